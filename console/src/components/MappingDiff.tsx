import type { Mapping } from "../../../gen/dynroute/v1/mapping_pb.js";

/** What changed between two states of a mapping (either may be absent: a create or a delete), field by field. */
export function MappingDiff({ before, after }: { before: Mapping | undefined; after: Mapping | undefined }) {
  const oldBackends = before?.backends ?? [];
  const newBackends = after?.backends ?? [];
  const kept = newBackends.filter((b) => oldBackends.includes(b));
  const reordered = kept.join("\n") !== oldBackends.filter((b) => newBackends.includes(b)).join("\n");
  const oldLabels = before?.labels ?? {};
  const newLabels = after?.labels ?? {};
  const labelKeys = [...new Set([...Object.keys(oldLabels), ...Object.keys(newLabels)])].sort();
  return (
    <dl className="diff">
      <dt>Domain</dt>
      <dd>
        <Change from={before?.domain} to={after?.domain} />
      </dd>
      <dt>Backends{reordered && <span className="hint"> (order changed)</span>}</dt>
      <dd>
        <ul>
          {newBackends.map((b) => (
            <li key={`n${b}`}>{oldBackends.includes(b) ? b : <Added text={b} />}</li>
          ))}
          {oldBackends
            .filter((b) => !newBackends.includes(b))
            .map((b) => (
              <li key={`o${b}`}>
                <Removed text={b} />
              </li>
            ))}
        </ul>
      </dd>
      <dt>Labels</dt>
      <dd>
        {labelKeys.length === 0 ? (
          <span className="hint">none</span>
        ) : (
          <ul>
            {labelKeys.map((k) => (
              <li key={k}>
                <Change from={k in oldLabels ? `${k}=${oldLabels[k]}` : undefined} to={k in newLabels ? `${k}=${newLabels[k]}` : undefined} />
              </li>
            ))}
          </ul>
        )}
      </dd>
    </dl>
  );
}

function Change({ from, to }: { from: string | undefined; to: string | undefined }) {
  if (from === to) return <>{to}</>;
  return (
    <>
      {from !== undefined && <Removed text={from} />}
      {from !== undefined && to !== undefined && " → "}
      {to !== undefined && <Added text={to} />}
    </>
  );
}

const Added = ({ text }: { text: string }) => (
  <ins>
    <span className="sr-only">added: </span>
    {text}
  </ins>
);

const Removed = ({ text }: { text: string }) => (
  <del>
    <span className="sr-only">removed: </span>
    {text}
  </del>
);
