/** The runs list kept current by the tenant's run events (`useLiveRuns`). */

import { useQueryClient } from '@tanstack/react-query'
import { useEffect, useState } from 'react'
import { throttle } from '../lib/throttle'
import { followTenant, type TenantStatus } from './tenantEvents'

/** The events that change a row of the runs list (state, current step, counts, totals). */
export const RUN_LIST_EVENTS = [
  'ExecutionStarted',
  'ExecutionCompleted',
  'ExecutionFailed',
  'ExecutionHalted',
  'ExecutionCancelled',
  'ExecutionRolledBack',
  'StepStarted',
  'StepCompleted',
  'StepFailed',
  'HumanApprovalRequested',
  'HumanApprovalGranted',
  'HumanApprovalRejected',
]

/**
 * Refresh the runs list when the tenant's run events arrive: at most once a second during a
 * burst, and once more 1.5 s after it (the events come from the Redis projection, the list
 * from PostgreSQL's, which may apply them a little later). A `resync` refreshes at once.
 */
export function useLiveRuns(): TenantStatus {
  const queryClient = useQueryClient()
  const [status, setStatus] = useState<TenantStatus>('connecting')
  useEffect(() => {
    const refresh = () => void queryClient.invalidateQueries({ queryKey: ['runs'] })
    const throttled = throttle(refresh, 1_000, 1_500)
    const stop = followTenant({
      types: RUN_LIST_EVENTS,
      onEvent: throttled,
      onResync: refresh,
      onStatus: setStatus,
    })
    return () => {
      stop()
      throttled.cancel()
    }
  }, [queryClient])
  return status
}
