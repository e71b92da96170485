import { HistoryPage } from "../pages/HistoryPage";
import { KeysPage } from "../pages/KeysPage";
import { MappingEditPage } from "../pages/MappingEditPage";
import { MappingsPage } from "../pages/MappingsPage";
import { OperationsPage } from "../pages/OperationsPage";
import { href, useRoute, type Route } from "../route";
import { useSession, type Session } from "../session";
import { PageHeading } from "./PageHeading";
import { TenantPicker } from "./TenantPicker";

const NAV = [
  { page: "mappings", label: "Mappings", adminOnly: false },
  { page: "history", label: "History", adminOnly: false },
  { page: "keys", label: "Keys", adminOnly: true },
  { page: "operations", label: "Operations", adminOnly: true },
];

/** The frame of every signed-in page: who is signed in, which tenant, the navigation, and the page. */
export function Shell() {
  const { session, signOut } = useSession();
  const route = useRoute();
  const current = route.page === "mapping" ? "mappings" : route.page;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <div className="top-row">
          <span className="brand">dynroute</span>
          <span className="who">
            {session.role} key{session.role !== "admin" && <> · tenant <strong>{session.tenant}</strong></>}
          </span>
          <button type="button" className="link-button" onClick={signOut}>
            Sign out
          </button>
        </div>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((n) => !n.adminOnly || session.role === "admin").map((n) => (
              <li key={n.page}>
                <a href={href(n.page)} aria-current={n.page === current ? "page" : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
          {session.role === "admin" && <TenantPicker />}
        </nav>
      </header>
      <main id="main">
        <Page route={route} session={session} />
      </main>
    </>
  );
}

function Page({ route, session }: { route: Route; session: Session }) {
  const admin = session.role === "admin";
  if ((route.page === "keys" || route.page === "operations") && !admin) return <Missing />;
  if (route.page === "keys") return <KeysPage />;
  if (route.page === "operations") return <OperationsPage />;
  if (route.page === "history") return <HistoryPage key={route.params.get("domain") ?? ""} domain={route.params.get("domain") ?? ""} />;
  if (route.page !== "mappings" && route.page !== "mapping") return <Missing />;
  if (session.tenant === "") {
    return (
      <>
        <PageHeading title="Pick a tenant" />
        <p>Choose or type a tenant in the bar above to see and change its mappings.</p>
      </>
    );
  }
  if (route.page === "mappings") return <MappingsPage />;
  const domain = route.params.get("domain");
  return <MappingEditPage key={domain ?? ""} domain={domain} />;
}

function Missing() {
  return (
    <>
      <PageHeading title="No such page" />
      <p>
        <a href={href("mappings")}>Go to the mappings</a>
      </p>
    </>
  );
}
