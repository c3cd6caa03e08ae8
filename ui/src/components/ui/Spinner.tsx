export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p role="status" className="flex items-center gap-2 text-sm text-slate-600">
      <span
        aria-hidden="true"
        className="inline-block size-3 animate-spin rounded-full border-2 border-slate-400 border-t-transparent"
      />
      {label}
    </p>
  )
}
