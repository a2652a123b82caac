import { FormEvent, useEffect, useRef, useState } from 'react';
import { Action, consequence, describeAction, perform, tokens } from './api';

/**
 * Names exactly what will change and asks for the admin token when none is kept for this tab. Enter
 * confirms, Escape cancels (the native <dialog>); focus goes back to the button that opened it. A
 * refusal stays in the dialog with the API's own message.
 */
export function ConfirmDialog({ action, onClose }: { action: Action; onClose: (done?: string) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [needToken, setNeedToken] = useState(() => !tokens.admin());
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    const adminToken = needToken ? token.trim() : tokens.admin();
    if (!adminToken) {
      setError('Enter the admin token.');
      return;
    }
    setBusy(true);
    setError(undefined);
    const result = await perform(action, adminToken);
    setBusy(false);
    if (result.ok) {
      if (needToken) tokens.setAdmin(adminToken);
      onClose(`${describeAction(action)}: ${result.message}`);
      return;
    }
    if (result.status === 401 || result.status === 403) {
      tokens.forgetAdmin();
      setNeedToken(true);
    }
    setError(`Refused${result.status ? ` (${result.status})` : ''}: ${result.message}`);
  };

  return (
    <dialog ref={dialog} className="dialog" aria-labelledby="confirm-title" aria-describedby="confirm-what" onCancel={(e) => { e.preventDefault(); onClose(); }}>
      <form onSubmit={submit}>
        <h2 id="confirm-title">Confirm</h2>
        <p id="confirm-what" data-testid="confirm-what">
          <strong>{describeAction(action)}?</strong> {consequence(action)}
        </p>
        {needToken && (
          <p>
            <label htmlFor="admin-token">Admin token</label>
            <input id="admin-token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} autoFocus />
            <span className="muted small">Kept in this tab's session storage only.</span>
          </p>
        )}
        {error && (
          <p className="error" role="alert" data-testid="action-error">
            {error}
          </p>
        )}
        <div className="dialog-buttons">
          <button type="button" onClick={() => onClose()}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy} autoFocus={!needToken}>
            {busy ? 'Working…' : 'Confirm'}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** Asks for a read token when the registry requires one for reads (the feed answered 401/403). */
export function ReadTokenDialog({ message, onDone }: { message: string; onDone: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [token, setToken] = useState('');
  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog ref={dialog} className="dialog" aria-labelledby="read-title" onCancel={(e) => e.preventDefault()}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!token.trim()) return;
          tokens.setRead(token.trim());
          onDone();
        }}
      >
        <h2 id="read-title">Token needed to read the registry</h2>
        <p className="error" role="alert">
          {message}
        </p>
        <p>
          <label htmlFor="read-token">Read token (or the registry or admin token)</label>
          <input id="read-token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} autoFocus />
        </p>
        <div className="dialog-buttons">
          <button type="submit" className="primary">
            Connect
          </button>
        </div>
      </form>
    </dialog>
  );
}
