import { useRef, useState } from "react";

/** A destructive action that asks once more, in place, before it runs. */
export function ConfirmButton({ label, question, confirmLabel, onConfirm, busy }: { label: string; question: string; confirmLabel: string; onConfirm: () => void; busy?: boolean }) {
  const [asking, setAsking] = useState(false);
  const trigger = useRef<HTMLButtonElement>(null);
  const cancel = () => {
    setAsking(false);
    requestAnimationFrame(() => trigger.current?.focus());
  };
  if (!asking) {
    return (
      <button type="button" className="danger" ref={trigger} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span className="confirm" role="group" aria-label={question}>
      <span>{question}</span>
      <button type="button" className="danger" onClick={onConfirm} disabled={busy} autoFocus>
        {confirmLabel}
      </button>
      <button type="button" onClick={cancel}>
        Cancel
      </button>
    </span>
  );
}
