import { Suspense } from 'react'
import { NavLink, Outlet } from 'react-router'
import { useAuth } from '../auth/AuthContext'
import type { Role } from '../auth/roles'
import { Button } from './ui/Button'
import { Loading } from './ui/Spinner'

interface NavItem {
  to: string
  label: string
  /** Shown only to this role and above (the route it reads needs it). */
  minimum?: Role
}

const SECTIONS: { title: string; items: NavItem[] }[] = [
  {
    title: 'Developer',
    items: [
      { to: '/runs', label: 'Runs' },
      { to: '/workflows', label: 'Workflows' },
    ],
  },
  {
    title: 'Operations',
    items: [
      { to: '/operations', label: 'Overview' },
      { to: '/failures', label: 'Failures' },
      { to: '/dlq', label: 'Dead letters', minimum: 'developer' },
    ],
  },
  {
    title: 'Compliance',
    items: [
      { to: '/audit', label: 'Audit log' },
      { to: '/integrity', label: 'History integrity' },
      { to: '/policies', label: 'Policies' },
    ],
  },
]

export function Layout() {
  const { me, signOut, can } = useAuth()
  return (
    <div className="flex min-h-screen">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:rounded focus:bg-white focus:p-2"
      >
        Skip to content
      </a>
      <aside className="w-52 shrink-0 border-r border-slate-200 bg-white">
        <div className="flex items-center gap-2 px-4 py-4">
          <img src="/ui/favicon.svg" alt="" className="size-6" />
          <span className="text-lg font-semibold tracking-tight">Omium</span>
        </div>
        <nav aria-label="Main">
          {SECTIONS.map((section) => (
            <div key={section.title} className="mb-4">
              <p className="px-4 pb-1 text-xs font-semibold text-slate-600 uppercase">{section.title}</p>
              <ul>
                {section.items
                  .filter((item) => !item.minimum || can(item.minimum))
                  .map((item) => (
                    <li key={item.to}>
                      <NavLink
                        to={item.to}
                        className={({ isActive }) =>
                          `block px-4 py-1.5 text-sm ${isActive ? 'bg-indigo-50 font-medium text-indigo-800' : 'text-slate-700 hover:bg-slate-100'}`
                        }
                      >
                        {item.label}
                      </NavLink>
                    </li>
                  ))}
              </ul>
            </div>
          ))}
        </nav>
      </aside>
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="flex items-center justify-end gap-3 border-b border-slate-200 bg-white px-6 py-2 text-sm">
          <span data-testid="whoami">
            <span className="font-medium">{me?.subject}</span>
            <span className="text-slate-600"> @ {me?.tenant_id}</span>
          </span>
          <span
            data-testid="role"
            className="rounded bg-slate-800 px-2 py-0.5 text-xs font-medium text-white"
          >
            {me?.role ?? 'no role'}
          </span>
          <Button size="sm" variant="ghost" onClick={signOut}>
            Sign out
          </Button>
        </header>
        <main id="main" className="min-w-0 flex-1 p-6">
          <Suspense fallback={<Loading />}>
            <Outlet />
          </Suspense>
        </main>
      </div>
    </div>
  )
}
