import type { BackendRow } from "../draft";
import { rowId } from "../draft";
import { FieldErrors, invalidProps } from "./FieldErrors";

interface Props {
  rows: BackendRow[];
  onChange(rows: BackendRow[]): void;
  /** The server's messages by field: `backends`, `backends[i]`. */
  errors: Map<string, string[]>;
}

/** The ordered list of backend URLs: edit, add, remove, move up and down. */
export function BackendsEditor({ rows, onChange, errors }: Props) {
  const set = (i: number, url: string) => onChange(rows.map((r, j) => (j === i ? { ...r, url } : r)));
  const move = (i: number, by: number) => {
    const next = [...rows];
    [next[i], next[i + by]] = [next[i + by]!, next[i]!];
    onChange(next);
  };
  const add = () => {
    const row = { id: rowId(), url: "" };
    onChange([...rows, row]);
    requestAnimationFrame(() => document.getElementById(`backend-${row.id}`)?.focus());
  };
  return (
    <fieldset className="editor">
      <legend>Backends</legend>
      <p className="hint">http:// or https:// URLs, tried round robin; one at least.</p>
      <FieldErrors id="backends-error" messages={errors.get("backends")} />
      <ol>
        {rows.map((row, i) => {
          const n = i + 1;
          const errorId = `backend-${row.id}-error`;
          const messages = errors.get(`backends[${i}]`);
          return (
            <li key={row.id}>
              <label htmlFor={`backend-${row.id}`}>Backend {n}</label>
              <div className="row-controls">
                <input id={`backend-${row.id}`} type="url" value={row.url} placeholder="http://instance-01:3000" onChange={(e) => set(i, e.target.value)} spellCheck={false} {...invalidProps(errorId, messages)} />
                <button type="button" aria-label={`Move backend ${n} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                  ↑
                </button>
                <button type="button" aria-label={`Move backend ${n} down`} disabled={i === rows.length - 1} onClick={() => move(i, 1)}>
                  ↓
                </button>
                <button type="button" aria-label={`Remove backend ${n}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
                  ✕
                </button>
              </div>
              <FieldErrors id={errorId} messages={messages} />
            </li>
          );
        })}
      </ol>
      <button type="button" onClick={add}>
        Add backend
      </button>
    </fieldset>
  );
}
