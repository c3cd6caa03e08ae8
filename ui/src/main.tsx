import { QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { ApiError } from './api/problem'
import { runsQuery } from './api/queries'
import { App } from './App'
import { AuthProvider } from './auth/AuthContext'
import { loadCredential } from './auth/session'
import { parseRunFilters, runFiltersToQuery } from './lib/filters'
import './index.css'

const queryClient = new QueryClient({
  queryCache: new QueryCache(),
  defaultOptions: {
    queries: {
      staleTime: 2_000,
      refetchOnWindowFocus: false,
      // Client errors do not get better by asking again; a rate limit or an outage may.
      retry: (count, error) =>
        !(error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) &&
        count < 2,
    },
  },
})

// Opening the runs list (the landing page) with a stored session: ask for its first page
// alongside the session check instead of after it (the list renders from this when it mounts).
if (loadCredential() && /^\/ui(\/runs)?\/?$/.test(location.pathname)) {
  const filters = parseRunFilters(new URLSearchParams(location.search))
  void queryClient.prefetchQuery(runsQuery(runFiltersToQuery(filters), null))
}

const root = document.getElementById('root')
if (!root) throw new Error('no #root element')
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <AuthProvider>
        <App />
      </AuthProvider>
    </QueryClientProvider>
  </StrictMode>,
)
