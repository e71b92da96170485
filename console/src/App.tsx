import { Code } from "@connectrpc/connect";
import { TransportProvider } from "@connectrpc/connect-query";
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Shell } from "./components/Shell";
import { hasCode } from "./errors";
import { SignInPage } from "./pages/SignInPage";
import { loadSession, SessionContext, storeSession, type Session, type SessionControls } from "./session";
import { createApiTransport } from "./transport";

/** Signed out: the sign-in form. Signed in: the pages, with a transport and query cache of that key's own. */
export function App() {
  const [session, setSession] = useState(loadSession);
  const [notice, setNotice] = useState("");

  const change = (next: Session | null, message = "") => {
    storeSession(next);
    setSession(next);
    setNotice(message);
  };

  if (!session) return <SignInPage notice={notice} onSignedIn={(s) => change(s)} />;
  return (
    <SignedIn
      key={session.key}
      controls={{
        session,
        pickTenant: (tenant) => change({ ...session, tenant }),
        signOut: () => change(null, "Signed out."),
      }}
      onKeyRefused={() => change(null, "The key was refused (revoked or expired). Sign in again.")}
    />
  );
}

function SignedIn({ controls, onKeyRefused }: { controls: SessionControls; onKeyRefused: () => void }) {
  const transport = useMemo(() => createApiTransport(controls.session.key), [controls.session.key]);
  const [queryClient] = useState(() => {
    const onError = (err: unknown) => hasCode(err, Code.Unauthenticated) && onKeyRefused();
    return new QueryClient({
      queryCache: new QueryCache({ onError }),
      mutationCache: new MutationCache({ onError }),
      defaultOptions: { queries: { retry: (count, err) => count < 2 && (hasCode(err, Code.Unavailable) || hasCode(err, Code.Unknown)) } },
    });
  });
  return (
    <TransportProvider transport={transport}>
      <QueryClientProvider client={queryClient}>
        <SessionContext.Provider value={controls}>
          <Shell />
        </SessionContext.Provider>
      </QueryClientProvider>
    </TransportProvider>
  );
}
