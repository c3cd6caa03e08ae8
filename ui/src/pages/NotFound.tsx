import { Link } from 'react-router'

export function NotFound() {
  return (
    <div>
      <h1 className="mb-2 text-xl font-semibold">Page not found</h1>
      <Link className="text-indigo-700 underline" to="/runs">
        Back to runs
      </Link>
    </div>
  )
}
