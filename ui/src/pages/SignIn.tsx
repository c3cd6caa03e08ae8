import { useState, type FormEvent } from 'react'
import { ApiError } from '../api/problem'
import { useAuth } from '../auth/AuthContext'
import { Button } from '../components/ui/Button'
import { Field, TextArea } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'

export function SignIn() {
  const { signIn, signedOutBecause } = useAuth()
  const [value, setValue] = useState('')
  const [remember, setRemember] = useState(true)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)

  async function submit(event: FormEvent) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await signIn(value, remember)
    } catch (caught) {
      setError(caught)
      setBusy(false)
    }
  }

  return (
    <main id="main" className="flex min-h-screen items-center justify-center p-6">
      <form
        onSubmit={submit}
        className="flex w-full max-w-md flex-col gap-4 rounded-lg bg-white p-6 shadow ring-1 ring-slate-200"
      >
        <div className="flex items-center gap-2">
          <img src="/ui/favicon.svg" alt="" className="size-7" />
          <h1 className="text-xl font-semibold">Sign in to Omium</h1>
        </div>
        {signedOutBecause && !error && (
          <p role="status" className="rounded-md bg-amber-50 p-2 text-sm text-amber-900">
            You were signed out: {signedOutBecause}
          </p>
        )}
        <Field
          label="Access token or API key"
          htmlFor="credential"
          hint={
            <>
              A JWT from your identity provider (locally: <code>omium token</code>) or an API key
              (<code>omk_…</code>). It is sent in a header, never in a URL.
            </>
          }
        >
          <TextArea
            id="credential"
            name="credential"
            rows={4}
            required
            autoComplete="off"
            spellCheck={false}
            value={value}
            onChange={(event) => setValue(event.target.value)}
          />
        </Field>
        <label className="flex items-center gap-2 text-sm">
          <input
            type="checkbox"
            checked={remember}
            onChange={(event) => setRemember(event.target.checked)}
          />
          Keep me signed in in this tab (session storage; forgotten when the tab closes)
        </label>
        {error !== null && (
          <ProblemAlert error={error instanceof ApiError ? error : new Error(String(error))} />
        )}
        <Button type="submit" variant="primary" disabled={busy || !value.trim()}>
          {busy ? 'Checking…' : 'Sign in'}
        </Button>
      </form>
    </main>
  )
}
