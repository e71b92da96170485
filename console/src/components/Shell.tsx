import { CertificatesPage } from "../pages/CertificatesPage";
import { HistoryPage } from "../pages/HistoryPage";
import { KeysPage } from "../pages/KeysPage";
import { MappingEditPage } from "../pages/MappingEditPage";
import { MappingsPage } from "../pages/MappingsPage";
import { OperationsPage } from "../pages/OperationsPage";
import { TenantSettingsPage } from "../pages/TenantSettingsPage";
import { TenantsPage } from "../pages/TenantsPage";
import { href, useRoute, type Route } from "../route";
import { useSession, type Session } from "../session";
import { PageHeading } from "./PageHeading";
import { TenantPicker } from "./TenantPicker";

// Who sees each entry: everyone, admins only, or tenant keys only.
const NAV = [
  { page: "mappings", label: "Mappings", for: "all" },
  { page: "certificates", label: "Certificates", for: "all" },
  { page: "history", label: "History", for: "all" },
  { page: "tenants", label: "Tenants", for: "admin" },
  { page: "tenant", label: "Tenant settings", for: "tenant" },
  { page: "keys", label: "Keys", for: "admin" },
  { page: "operations", label: "Operations", for: "admin" },
] as const;

const visible = (entry: (typeof NAV)[number], role: Session["role"]) => entry.for === "all" || entry.for === (role === "admin" ? "admin" : "tenant");
/** The navigation entry a page belongs to (a mapping's page to the mappings'). */
const section = (route: Route) => (route.page === "mapping" ? "mappings" : route.page);

/** The frame of every signed-in page: who is signed in, which tenant, the navigation, and the page. */
export function Shell() {
  const { session, signOut } = useSession();
  const route = useRoute();
  const current = section(route);
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
            {NAV.filter((n) => visible(n, session.role)).map((n) => (
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
  const entry = NAV.find((n) => n.page === section(route));
  if (!entry || !visible(entry, session.role)) return <Missing />;
  if (route.page === "keys") return <KeysPage />;
  if (route.page === "operations") return <OperationsPage />;
  if (route.page === "tenants") return <TenantsPage key={route.params.get("id") ?? ""} id={route.params.get("id") ?? ""} />;
  if (route.page === "tenant") return <TenantSettingsPage />;
  if (route.page === "history") return <HistoryPage key={route.params.get("domain") ?? ""} domain={route.params.get("domain") ?? ""} />;
  if (session.tenant === "") {
    return (
      <>
        <PageHeading title="Pick a tenant" />
        <p>Choose or type a tenant in the bar above to see and change its mappings and certificates.</p>
      </>
    );
  }
  if (route.page === "mappings") return <MappingsPage />;
  if (route.page === "certificates") return <CertificatesPage />;
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
