/** Loom's roles (DESIGN.md "Trust"). A route names the roles it allows; nothing is allowed by default. */
export const ROLES = ['operator', 'supervisor', 'quality', 'engineer', 'admin', 'integration'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(v: string): v is Role {
  return (ROLES as readonly string[]).includes(v);
}

/** Who did something: a person, an integration, or Loom itself (`system`). */
export interface Actor {
  readonly userId: number | null;
  readonly username: string;
  readonly roles: readonly Role[];
}

export const SYSTEM_ACTOR: Actor = { userId: null, username: 'system', roles: [] };

export function hasAnyRole(actor: Actor, allowed: readonly Role[]): boolean {
  return actor.roles.some((r) => allowed.includes(r));
}
