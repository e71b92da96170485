import type { LabelRow } from "../draft";
import { rowId } from "../draft";
import { FieldErrors, invalidProps } from "./FieldErrors";

interface Props {
  rows: LabelRow[];
  onChange(rows: LabelRow[]): void;
  /** The server's messages by field: `labels`, `labels["key"]`. */
  errors: Map<string, string[]>;
}

/** Key/value labels: edit, add, remove. */
export function LabelsEditor({ rows, onChange, errors }: Props) {
  const set = (i: number, change: Partial<LabelRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...change } : r)));
  const add = () => {
    const row = { id: rowId(), key: "", value: "" };
    onChange([...rows, row]);
    requestAnimationFrame(() => document.getElementById(`label-key-${row.id}`)?.focus());
  };
  return (
    <fieldset className="editor">
      <legend>Labels</legend>
      <p className="hint">Letters, digits, “.”, “_” and “-”, up to 63 each; filter the list with them (env=prod).</p>
      <FieldErrors id="labels-error" messages={errors.get("labels")} />
      {rows.length === 0 && <p className="hint">No labels.</p>}
      <ul>
        {rows.map((row, i) => {
          const n = i + 1;
          const errorId = `label-${row.id}-error`;
          const messages = errors.get(`labels["${row.key.trim()}"]`);
          return (
            <li key={row.id}>
              <div className="row-controls">
                <label htmlFor={`label-key-${row.id}`} className="inline-label">
                  Key {n}
                </label>
                <input id={`label-key-${row.id}`} value={row.key} onChange={(e) => set(i, { key: e.target.value })} spellCheck={false} {...invalidProps(errorId, messages)} />
                <label htmlFor={`label-value-${row.id}`} className="inline-label">
                  Value {n}
                </label>
                <input id={`label-value-${row.id}`} value={row.value} onChange={(e) => set(i, { value: e.target.value })} spellCheck={false} {...invalidProps(errorId, messages)} />
                <button type="button" aria-label={`Remove label ${n}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
                  ✕
                </button>
              </div>
              <FieldErrors id={errorId} messages={messages} />
            </li>
          );
        })}
      </ul>
      <button type="button" onClick={add}>
        Add label
      </button>
    </fieldset>
  );
}
