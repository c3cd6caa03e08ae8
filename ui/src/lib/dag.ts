/** A workflow's step graph from its definition (as the SDK resolves it). */

import type { WorkflowStepDef } from '../api/types'

export interface DagEdge {
  from: string
  to: string
}

/**
 * Edges `needs → step`. A workflow where no step sets `needs` is sequential: each step follows
 * the one before it in the list (the SDK's rule).
 */
export function dagEdges(steps: readonly WorkflowStepDef[]): DagEdge[] {
  const sequential = steps.every((step) => step.needs === undefined || step.needs === null)
  if (sequential) {
    return steps.slice(1).map((step, index) => ({ from: steps[index]?.id ?? '', to: step.id }))
  }
  const ids = new Set(steps.map((step) => step.id))
  return steps.flatMap((step) =>
    (step.needs ?? []).filter((need) => ids.has(need)).map((need) => ({ from: need, to: step.id })),
  )
}

/** A step definition's steps list, tolerating definitions without one. */
export function stepsOf(definition: { steps?: unknown } | null | undefined): WorkflowStepDef[] {
  const steps = definition?.steps
  if (!Array.isArray(steps)) return []
  return steps.filter(
    (step): step is WorkflowStepDef =>
      typeof step === 'object' && step !== null && typeof (step as { id?: unknown }).id === 'string',
  )
}
