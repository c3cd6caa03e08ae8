import { useQueryClient } from '@tanstack/react-query'
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react'
import { getJson, onUnauthenticated } from '../api/client'
import { describeError } from '../api/problem'
import type { WhoAmI } from '../api/types'
import { atLeast, type Role } from './roles'
import { clearCredential, credentialKind, loadCredential, saveCredential } from './session'

interface Auth {
  me: WhoAmI | null
  /** Set while the stored credential is being checked at start. */
  checking: boolean
  /** Why the user was signed out (an expired token ...), shown on the sign-in page. */
  signedOutBecause: string | null
  signIn: (value: string, remember: boolean) => Promise<void>
  signOut: () => void
  can: (minimum: Role) => boolean
}

const AuthContext = createContext<Auth | null>(null)

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient()
  const [me, setMe] = useState<WhoAmI | null>(null)
  const [checking, setChecking] = useState(() => loadCredential() !== null)
  const [signedOutBecause, setSignedOutBecause] = useState<string | null>(null)

  const signOut = useCallback(() => {
    clearCredential()
    setMe(null)
    queryClient.clear()
  }, [queryClient])

  // A stored credential (this tab, before a reload): check it once.
  useEffect(() => {
    if (!loadCredential()) return
    getJson<WhoAmI>('/whoami')
      .then(setMe)
      .catch((error: unknown) => {
        clearCredential()
        setSignedOutBecause(describeError(error).message)
      })
      .finally(() => setChecking(false))
  }, [])

  // Any 401 later on (the token expired, the key was revoked): back to sign-in, saying why.
  useEffect(
    () =>
      onUnauthenticated((error) => {
        setSignedOutBecause(describeError(error).message)
        signOut()
      }),
    [signOut],
  )

  const signIn = useCallback(
    async (value: string, remember: boolean) => {
      const trimmed = value.trim()
      saveCredential({ kind: credentialKind(trimmed), value: trimmed }, remember)
      try {
        const who = await getJson<WhoAmI>('/whoami')
        queryClient.clear()
        setSignedOutBecause(null)
        setMe(who)
      } catch (error) {
        clearCredential()
        throw error
      }
    },
    [queryClient],
  )

  const value = useMemo<Auth>(
    () => ({
      me,
      checking,
      signedOutBecause,
      signIn,
      signOut,
      can: (minimum: Role) => atLeast(me?.role, minimum),
    }),
    [me, checking, signedOutBecause, signIn, signOut],
  )
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext)
  if (!auth) throw new Error('useAuth outside AuthProvider')
  return auth
}
