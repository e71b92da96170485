import { useState, type FormEvent } from "react";
import { probeAccess, SignInError } from "../access";
import { ErrorNote } from "../components/ErrorNote";
import { FieldErrors, invalidProps } from "../components/FieldErrors";
import { PageHeading } from "../components/PageHeading";
import type { Session } from "../session";

/** Sign in with an API key; an admin may name the tenant to open. */
export function SignInPage({ notice, onSignedIn }: { notice: string; onSignedIn(session: Session): void }) {
  const [key, setKey] = useState("");
  const [tenant, setTenant] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const fieldError = (field: SignInError["field"]) => (error instanceof SignInError && error.field === field ? [error.message] : undefined);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await probeAccess(key.trim(), tenant.trim()));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <main id="main" className="sign-in">
      <PageHeading title="Sign in to dynroute" />
      {notice && <p role="status">{notice}</p>}
      <form onSubmit={submit} noValidate>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" required value={key} onChange={(e) => setKey(e.target.value)} {...invalidProps("api-key-error", fieldError("key"))} />
        <FieldErrors id="api-key-error" messages={fieldError("key")} />
        <label htmlFor="sign-in-tenant">Tenant</label>
        <input id="sign-in-tenant" autoComplete="off" spellCheck={false} value={tenant} onChange={(e) => setTenant(e.target.value)} aria-describedby="sign-in-tenant-hint" {...invalidProps("sign-in-tenant-error", fieldError("tenant"))} />
        <p id="sign-in-tenant-hint" className="hint">
          Optional: an editor or viewer key opens its own tenant; an admin may leave it empty and pick one later.
        </p>
        <FieldErrors id="sign-in-tenant-error" messages={fieldError("tenant")} />
        {error !== null && !(error instanceof SignInError) && <ErrorNote error={error} prefix="Could not sign in" />}
        <button type="submit" className="primary" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p className="hint">The key stays in this tab only (session storage) and is sent only to this daemon, in the Authorization header.</p>
    </main>
  );
}
