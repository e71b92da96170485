import { FieldErrors, invalidProps } from "./FieldErrors";

interface Props {
  id: string;
  label: string;
  hint: string;
  value: string;
  onChange(value: string): void;
  /** The server's messages for this field. */
  messages: readonly string[] | undefined;
}

/** PEM text, pasted or read from a file (in the browser: the file goes nowhere but into the field). */
export function PemInput({ id, label, hint, value, onChange, messages }: Props) {
  const read = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    // The text is in the field now; forget the file, so the same one can be read again after an edit.
    input.value = "";
    if (file) onChange(await file.text());
  };
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea id={id} className="pem" rows={6} value={value} onChange={(e) => onChange(e.target.value)} spellCheck={false} autoComplete="off" aria-describedby={`${id}-hint`} {...invalidProps(`${id}-error`, messages)} />
      <p id={`${id}-hint`} className="hint">
        {hint}
      </p>
      <label htmlFor={`${id}-file`} className="inline-label">
        Or read {label.toLowerCase()} from a file
      </label>
      <input id={`${id}-file`} type="file" accept=".pem,.crt,.cer,.key,text/plain" onChange={(e) => read(e.target)} />
      <FieldErrors id={`${id}-error`} messages={messages} />
    </div>
  );
}
