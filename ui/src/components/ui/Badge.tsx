import type { ReactNode } from 'react'
import { cn } from './cn'

/** Colours for run, step, approval and round states (text stays readable: AA contrast). */
const TONES: Record<string, string> = {
  pending: 'bg-slate-100 text-slate-800 ring-slate-300',
  scheduled: 'bg-slate-100 text-slate-800 ring-slate-300',
  running: 'bg-blue-50 text-blue-800 ring-blue-300',
  started: 'bg-blue-50 text-blue-800 ring-blue-300',
  waiting_for_approval: 'bg-amber-50 text-amber-900 ring-amber-300',
  open: 'bg-amber-50 text-amber-900 ring-amber-300',
  completed: 'bg-green-50 text-green-800 ring-green-300',
  granted: 'bg-green-50 text-green-800 ring-green-300',
  reached: 'bg-green-50 text-green-800 ring-green-300',
  ok: 'bg-green-50 text-green-800 ring-green-300',
  accepted: 'bg-green-50 text-green-800 ring-green-300',
  failed: 'bg-red-50 text-red-800 ring-red-300',
  rejected: 'bg-red-50 text-red-800 ring-red-300',
  refused: 'bg-red-50 text-red-800 ring-red-300',
  broken: 'bg-red-50 text-red-800 ring-red-300',
  halted: 'bg-orange-50 text-orange-900 ring-orange-300',
  cancelled: 'bg-zinc-100 text-zinc-700 ring-zinc-300',
}

export function Badge({ tone, children }: { tone?: string; children: ReactNode }) {
  const key = tone ?? (typeof children === 'string' ? children : '')
  return (
    <span
      className={cn(
        'inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium whitespace-nowrap ring-1 ring-inset',
        TONES[key] ?? 'bg-slate-100 text-slate-800 ring-slate-300',
      )}
    >
      {typeof children === 'string' ? children.replaceAll('_', ' ') : children}
    </span>
  )
}
