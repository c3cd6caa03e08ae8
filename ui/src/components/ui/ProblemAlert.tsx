import { describeError } from '../../api/problem'

/** An error as a clear message: what happened and what to do (role="alert"). */
export function ProblemAlert({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { title, message, details, hint } = describeError(error)
  return (
    <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900">
      <p className="font-semibold">{title}</p>
      <p>{message}</p>
      {details.length > 0 && (
        <ul className="mt-1 list-inside list-disc">
          {details.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      )}
      {hint && <p className="mt-1 text-red-800">{hint}</p>}
      {onRetry && (
        <button type="button" onClick={onRetry} className="mt-2 font-medium underline">
          Retry
        </button>
      )}
    </div>
  )
}
