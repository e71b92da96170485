import { useSyncExternalStore } from "react";

/** The console's pages live in the URL's fragment (`#/mappings?domain=…`), so the daemon serves one document. */
export interface Route {
  page: string;
  params: URLSearchParams;
}

const subscribe = (onChange: () => void) => {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
};

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  const [page = "", query = ""] = hash.replace(/^#\/?/, "").split("?");
  return { page: page || "mappings", params: new URLSearchParams(query) };
}

export function href(page: string, params: Record<string, string> = {}): string {
  const query = new URLSearchParams(params).toString();
  return `#/${page}${query ? `?${query}` : ""}`;
}

export function navigate(page: string, params: Record<string, string> = {}): void {
  window.location.hash = href(page, params);
}
