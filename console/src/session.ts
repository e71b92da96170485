import { createContext, useContext } from "react";

export type Role = "admin" | "editor" | "viewer";

/** Who is signed in: the key (sent on every call), what it may do, and the tenant the pages show. */
export interface Session {
  key: string;
  role: Role;
  /** A tenant key's own tenant; for an admin, the tenant picked (empty until one is). */
  tenant: string;
}

// sessionStorage: the key lives as long as the tab, is never sent anywhere but in the
// Authorization header, and no other tab or site can make the browser send it.
const STORAGE_KEY = "dynroute.session";

export function loadSession(): Session | null {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null") as Session | null;
    return value && typeof value.key === "string" && typeof value.tenant === "string" ? value : null;
  } catch {
    return null;
  }
}

export function storeSession(session: Session | null): void {
  if (session) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORAGE_KEY);
}

export interface SessionControls {
  session: Session;
  /** Admins only: show another tenant. */
  pickTenant(tenant: string): void;
  signOut(): void;
}

export const SessionContext = createContext<SessionControls | null>(null);

export function useSession(): SessionControls {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside a signed-in page");
  return value;
}

export const canEdit = (role: Role) => role === "admin" || role === "editor";
