import { useQuery } from "@connectrpc/connect-query";
import { keepPreviousData } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { MappingService } from "../../../gen/dynroute/v1/mapping_pb.js";
import { ErrorNote } from "../components/ErrorNote";
import { FieldErrors, invalidProps } from "../components/FieldErrors";
import { LiveBadge } from "../components/LiveBadge";
import { PageHeading } from "../components/PageHeading";
import { TlsSummary } from "../components/TlsSummary";
import { fieldViolations } from "../errors";
import { formatTime } from "../format";
import { href } from "../route";
import { canEdit, useSession } from "../session";
import { PlainList } from "../components/PlainList";
import { Pager, usePageTokens } from "../components/Pager";

const PAGE_SIZE = 25;
const POLL_MS = 1000;

/** The tenant's mappings: filters, pages by cursor, and each mapping's live state, polled until all are live. */
export function MappingsPage() {
  const { session } = useSession();
  const [filters, setFilters] = useState({ domainSuffix: "", labelSelector: "", status: "" });
  const [draft, setDraft] = useState(filters);
  const pages = usePageTokens();
  const list = useQuery(
    MappingService.method.listMappings,
    { tenantId: session.tenant, ...filters, pageToken: pages.token, limit: PAGE_SIZE, total: true },
    { placeholderData: keepPreviousData, refetchInterval: (q) => (q.state.data?.mappings.some((m) => !m.live) ? POLL_MS : false) },
  );
  const page = list.data;
  const errors = fieldViolations(list.error);
  const first = pages.index * PAGE_SIZE;
  const shown = page?.mappings.length ?? 0;
  const pending = page?.mappings.filter((m) => !m.live).length ?? 0;

  const search = (e: FormEvent) => {
    e.preventDefault();
    setFilters({ domainSuffix: draft.domainSuffix.trim(), labelSelector: draft.labelSelector.trim(), status: draft.status });
    pages.reset();
  };

  return (
    <>
      <div className="page-head">
        <PageHeading title={`Mappings of ${session.tenant}`} />
        {canEdit(session.role) && (
          <a className="button primary" href={href("mapping")}>
            New mapping
          </a>
        )}
      </div>
      <form className="filters" onSubmit={search} role="search" aria-label="Filter mappings">
        <div>
          <label htmlFor="filter-domain">Domain</label>
          <input id="filter-domain" type="search" placeholder="example.org" value={draft.domainSuffix} onChange={(e) => setDraft({ ...draft, domainSuffix: e.target.value })} aria-describedby="filter-domain-hint" spellCheck={false} {...invalidProps("filter-domain-error", errors.get("domain_suffix"))} />
          <p id="filter-domain-hint" className="hint">
            The domain and every name under it.
          </p>
          <FieldErrors id="filter-domain-error" messages={errors.get("domain_suffix")} />
        </div>
        <div>
          <label htmlFor="filter-labels">Labels</label>
          <input id="filter-labels" type="search" placeholder="env=prod,team=web" value={draft.labelSelector} onChange={(e) => setDraft({ ...draft, labelSelector: e.target.value })} spellCheck={false} {...invalidProps("filter-labels-error", errors.get("label_selector"))} />
          <FieldErrors id="filter-labels-error" messages={errors.get("label_selector")} />
        </div>
        <div>
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.target.value })}>
            <option value="">Any</option>
            <option value="enabled">Enabled</option>
            <option value="disabled">Disabled</option>
          </select>
        </div>
        <button type="submit">Search</button>
      </form>
      {errors.size === 0 && <ErrorNote error={list.error} prefix="Could not list the mappings" />}
      {page && (
        <>
          <p role="status" className="count">
            {page.totalSize === 0 ? "No mappings." : `Showing ${first + 1}–${first + shown} of ${page.totalSize ?? "?"}`}
            {pending > 0 && ` · ${pending} not live yet`}
          </p>
          {shown > 0 && (
            <table className="mappings">
              <thead>
                <tr>
                  <th scope="col">Domain</th>
                  <th scope="col">Backends</th>
                  <th scope="col">Labels</th>
                  <th scope="col">Status</th>
                  <th scope="col">TLS</th>
                  <th scope="col">Updated</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {page.mappings.map((m) => (
                  <tr key={m.domain}>
                    <th scope="row" data-label="Domain">
                      <a href={href("mapping", { domain: m.domain })}>{m.domain}</a>
                    </th>
                    <td data-label="Backends">
                      <PlainList items={m.backends} />
                    </td>
                    <td data-label="Labels">
                      {Object.entries(m.labels).map(([k, v]) => (
                        <span key={k} className="chip">
                          {k}={v}
                        </span>
                      ))}
                    </td>
                    <td data-label="Status">
                      <LiveBadge mapping={m} />
                    </td>
                    <td data-label="TLS">
                      <TlsSummary mapping={m} />
                    </td>
                    <td data-label="Updated">{formatTime(m.updateTime)}</td>
                    <td>
                      <a href={href("history", { domain: m.domain })} aria-label={`History of ${m.domain}`}>
                        History
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <Pager pages={pages} nextPageToken={page.nextPageToken} />
        </>
      )}
    </>
  );
}
