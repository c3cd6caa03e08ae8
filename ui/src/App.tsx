import { lazy } from 'react'
import { BrowserRouter, Navigate, Route, Routes } from 'react-router'
import { useAuth } from './auth/AuthContext'
import { Layout } from './components/Layout'
import { Loading } from './components/ui/Spinner'
import { NotFound } from './pages/NotFound'
// The landing page is in the entry chunk: a lazy route suspends, and React holds a revealed
// Suspense boundary back ~300 ms, which the runs list would wait before its first request.
import Runs from './pages/Runs'
import { SignIn } from './pages/SignIn'

const Run = lazy(() => import('./pages/Run'))
const Workflows = lazy(() => import('./pages/Workflows'))
const WorkflowPage = lazy(() => import('./pages/WorkflowPage'))
const Operations = lazy(() => import('./pages/Operations'))
const Failures = lazy(() => import('./pages/Failures'))
const DeadLetters = lazy(() => import('./pages/DeadLetters'))
const Audit = lazy(() => import('./pages/Audit'))
const Integrity = lazy(() => import('./pages/Integrity'))
const Policies = lazy(() => import('./pages/Policies'))

export function App() {
  const { me, checking } = useAuth()
  if (checking) {
    return (
      <div className="p-6">
        <Loading label="Checking your session…" />
      </div>
    )
  }
  if (!me) return <SignIn />
  return (
    <BrowserRouter basename="/ui">
      <Routes>
        <Route element={<Layout />}>
          <Route index element={<Navigate to="/runs" replace />} />
          <Route path="runs" element={<Runs />} />
          <Route path="runs/:executionId" element={<Run />} />
          <Route path="workflows" element={<Workflows />} />
          <Route path="workflows/:workflowId" element={<WorkflowPage />} />
          <Route path="operations" element={<Operations />} />
          <Route path="failures" element={<Failures />} />
          <Route path="dlq" element={<DeadLetters />} />
          <Route path="audit" element={<Audit />} />
          <Route path="integrity" element={<Integrity />} />
          <Route path="policies" element={<Policies />} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </BrowserRouter>
  )
}
