import { useState } from "react";

/** Cursor paging state: the page tokens that led here (the last is this page's; "" the first page's). */
export function usePageTokens() {
  const [tokens, setTokens] = useState([""]);
  return {
    token: tokens.at(-1)!,
    /** How many pages come before this one. */
    index: tokens.length - 1,
    back: () => setTokens(tokens.slice(0, -1)),
    next: (token: string) => setTokens([...tokens, token]),
    reset: () => setTokens([""]),
  };
}

/** Previous and next page buttons for a list answered a page at a time. */
export function Pager({ pages, nextPageToken }: { pages: ReturnType<typeof usePageTokens>; nextPageToken: string }) {
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" disabled={pages.index === 0} onClick={pages.back}>
        Previous page
      </button>
      <button type="button" disabled={!nextPageToken} onClick={() => pages.next(nextPageToken)}>
        Next page
      </button>
    </nav>
  );
}
