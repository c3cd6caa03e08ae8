/** Roles are ordered: each may do everything the roles below it may (docs/api.md). */
export const ROLES = ['viewer', 'developer', 'operator', 'admin'] as const
export type Role = (typeof ROLES)[number]

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

export function rank(role: Role | null | undefined): number {
  return role ? ROLES.indexOf(role) : -1
}

/** Whether a caller holding `role` may use something that needs `minimum`. */
export function atLeast(role: Role | null | undefined, minimum: Role): boolean {
  return rank(role) >= rank(minimum)
}
