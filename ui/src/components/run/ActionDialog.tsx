import { useState, type FormEvent, type ReactNode } from 'react'
import { Button } from '../ui/Button'
import { Dialog } from '../ui/Dialog'
import { Field, TextArea } from '../ui/Field'
import { ProblemAlert } from '../ui/ProblemAlert'

/** Confirms one action on a run, with an optional (or required) reason, and shows its refusal. */
export function ActionDialog({
  open,
  title,
  confirm,
  danger,
  reasonLabel = 'Reason',
  reasonRequired = false,
  withReason = true,
  children,
  onClose,
  onConfirm,
}: {
  open: boolean
  title: string
  confirm: string
  danger?: boolean
  reasonLabel?: string
  reasonRequired?: boolean
  /** Whether to ask for a reason (or comment) at all. */
  withReason?: boolean
  children?: ReactNode
  onClose: () => void
  onConfirm: (reason: string) => Promise<unknown>
}) {
  const [reason, setReason] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)

  async function submit(event: FormEvent) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await onConfirm(reason.trim())
      setReason('')
      onClose()
    } catch (caught) {
      setError(caught)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Dialog open={open} title={title} onClose={onClose}>
      <form onSubmit={submit} className="flex flex-col gap-3">
        {children}
        {withReason && (
          <Field label={reasonRequired ? reasonLabel : `${reasonLabel} (optional)`} htmlFor="action-reason">
            <TextArea
              id="action-reason"
              rows={3}
              maxLength={2000}
              required={reasonRequired}
              value={reason}
              onChange={(e) => setReason(e.target.value)}
            />
          </Field>
        )}
        {error !== null && <ProblemAlert error={error} />}
        <div className="flex justify-end gap-2">
          <Button onClick={onClose}>Close</Button>
          <Button type="submit" variant={danger ? 'danger' : 'primary'} disabled={busy || (reasonRequired && !reason.trim())}>
            {busy ? 'Sending…' : confirm}
          </Button>
        </div>
      </form>
    </Dialog>
  )
}
