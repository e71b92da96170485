import type { HttpRoute } from "./http-routes.js";
import { matchPath, pathParts, type PathTemplate } from "./path-template.js";

/** The routes a request path matches. */
export interface PathMatch {
  /** The HTTP methods they allow (a GET also allows HEAD), in route order. */
  allowed(): string[];
  /** The first route (in route order) for `method` (HEAD: GET's), with its path variables; undefined when none. */
  route(method: string): { route: HttpRoute; vars: Map<string, string> } | undefined;
}

interface TemplateRoutes {
  template: PathTemplate;
  /** The routes of this template, each with its place in the route order. */
  routes: Array<{ route: HttpRoute; order: number }>;
}

/**
 * Looks up request paths among the routes. Each template is matched (and its
 * variables decoded) once per request, however many methods it binds, and
 * nothing is allocated per route: the lookup ran on every REST call.
 * The lookup throws URIError for malformed percent-encoding.
 */
export function routeTable(routes: readonly HttpRoute[]): (pathname: string) => PathMatch | undefined {
  const templates = new Map<string, TemplateRoutes>();
  routes.forEach((route, order) => {
    const source = route.template.source;
    let found = templates.get(source);
    if (!found) templates.set(source, (found = { template: route.template, routes: [] }));
    found.routes.push({ route, order });
  });
  const all = [...templates.values()];

  return (pathname) => {
    const parts = pathParts(pathname);
    const matched: Array<{ routes: TemplateRoutes["routes"]; vars: Map<string, string> }> = [];
    for (const { template, routes } of all) {
      const vars = matchPath(template, parts);
      if (vars) matched.push({ routes, vars });
    }
    if (matched.length === 0) return undefined;
    return {
      allowed() {
        const inOrder = matched.flatMap((m) => m.routes).sort((a, b) => a.order - b.order);
        return [...new Set(inOrder.flatMap(({ route }) => (route.httpMethod === "GET" ? ["GET", "HEAD"] : [route.httpMethod])))];
      },
      route(method) {
        const wanted = method === "HEAD" ? "GET" : method;
        let best: { route: HttpRoute; vars: Map<string, string>; order: number } | undefined;
        for (const { routes, vars } of matched) {
          for (const { route, order } of routes) if (route.httpMethod === wanted && (!best || order < best.order)) best = { route, vars, order };
        }
        return best && { route: best.route, vars: best.vars };
      },
    };
  };
}
