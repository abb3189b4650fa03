// teams.js: the database page's people and rules: its collaborators (admins only: list, add with
// a role, change a role, remove) and the protection of its branches (shown to everyone who reads
// the database, edited by admins), on the collaborators and protection API.
import { get, put, del, db as dbPath } from './api.js';
import { h, fill, errorBox } from './dom.js';

const ROLES = ['read', 'write', 'admin'];
const ROLES_HELP =
  'read: see a private database and comment · write: upload, branch, open and review pull requests · admin: merge into protected branches, manage people and settings.';

function roleSelect(id, value, label, onchange) {
  return h(
    'select',
    { id, 'aria-label': label, onchange },
    ROLES.map((r) => h('option', { value: r, selected: r === value }, r)),
  );
}

// The collaborators of o/d, or null when the caller may not manage them (not an admin): the
// list itself needs the admin role, so whether it loads is the answer.
export async function loadCollaborators(o, d, signal) {
  try {
    return await get(dbPath(o, d) + '/collaborators', {}, { signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return null;
  }
}

// The Collaborators section for an admin: `list` is loadCollaborators' answer.
export function collaboratorsSection(o, d, list, signal) {
  const base = dbPath(o, d) + '/collaborators/';
  const box = h('section', { id: 'collaborators', 'aria-labelledby': 'h-collab' });
  const msg = h('div', { 'aria-live': 'polite' });

  async function reload(note) {
    const fresh = await loadCollaborators(o, d, signal);
    if (fresh) draw(fresh, note);
  }
  async function act(fn, note) {
    fill(msg);
    try {
      await fn();
      await reload(note);
    } catch (e) {
      fill(msg, errorBox(e));
    }
  }

  function draw(l, note) {
    const people = l.collaborators || [];
    const name = h('input', { id: 'collab-name', required: true, autocomplete: 'off', spellcheck: 'false' });
    const role = roleSelect('collab-role', 'write', 'Role', null);
    fill(
      box,
      h('h2', { id: 'h-collab' }, 'Collaborators'),
      h(
        'ul',
        { class: 'people' },
        people.map((c) =>
          h(
            'li',
            { 'data-user': c.username },
            h('strong', {}, c.username),
            c.is_owner
              ? h('span', { class: 'muted' }, ' owner (admin)')
              : [
                  ' ',
                  roleSelect(`role-${c.username}`, c.role, `Role of ${c.username}`, (e) =>
                    act(() => put(base + encodeURIComponent(c.username), { role: e.target.value }), `${c.username} is now ${e.target.value}.`),
                  ),
                  ' ',
                  h('button', { type: 'button', class: 'danger-link', onclick: () => act(() => del(base + encodeURIComponent(c.username)), `${c.username} was removed.`) }, 'Remove'),
                ],
          ),
        ),
      ),
      h(
        'form',
        {
          class: 'inline',
          id: 'collab-add',
          onsubmit: (e) => {
            e.preventDefault();
            const who = name.value.trim();
            act(() => put(base + encodeURIComponent(who), { role: role.value }), `${who} was added as ${role.value}.`);
          },
        },
        h('label', { for: 'collab-name' }, 'Add a person'),
        name,
        h('label', { for: 'collab-role', class: 'sr-only' }, 'Role'),
        role,
        h('button', { type: 'submit' }, 'Add'),
      ),
      h('p', { class: 'help' }, ROLES_HELP),
      note ? h('p', { class: 'ok', role: 'status' }, note) : null,
      msg,
    );
  }
  draw(list);
  return box;
}

// "needs 2 approvals · merge: admin" for a protection answer; null when unprotected.
export function protectionText(p) {
  if (!p || !p.protected) return null;
  const parts = [`${p.requiredApprovals} approval${p.requiredApprovals === 1 ? '' : 's'} needed`];
  if (!p.allowSelfApproval) parts.push('not the author’s own');
  if (p.dismissStaleApprovals) parts.push('new commits dismiss approvals');
  parts.push(`merged by ${p.mergeRole}`);
  return parts.join(' · ');
}

// The protection of each branch in `names` (at most 50 asked for), by name.
export async function loadProtection(o, d, names, signal) {
  const out = {};
  await Promise.all(
    names.slice(0, 50).map(async (b) => {
      out[b] = await get(`${dbPath(o, d)}/branches/${encodeURIComponent(b)}/protection`, {}, { signal }).catch(() => null);
    }),
  );
  return out;
}

// The form with which an admin protects `branch` (or changes or lifts its protection); calls
// done() after a change.
export function protectionForm(o, d, branch, p, done) {
  const path = `${dbPath(o, d)}/branches/${encodeURIComponent(branch)}/protection`;
  const on = p && p.protected;
  const msg = h('div', { 'aria-live': 'polite' });
  const n = h('input', { id: 'prot-approvals', type: 'number', min: 0, max: 100, value: on ? p.requiredApprovals : 1 });
  const self = h('input', { id: 'prot-self', type: 'checkbox', checked: on ? p.allowSelfApproval : false });
  const stale = h('input', { id: 'prot-stale', type: 'checkbox', checked: on ? p.dismissStaleApprovals : true });
  const role = h(
    'select',
    { id: 'prot-role' },
    ['write', 'admin'].map((r) => h('option', { value: r, selected: (on ? p.mergeRole : 'write') === r }, r)),
  );
  const run = async (fn) => {
    fill(msg);
    try {
      await fn();
      done();
    } catch (e) {
      fill(msg, errorBox(e));
    }
  };
  return h(
    'details',
    { class: 'create', id: 'protection-edit' },
    h('summary', {}, on ? `Change the protection of ${branch}` : `Protect ${branch}`),
    h(
      'form',
      {
        class: 'card',
        onsubmit: (e) => {
          e.preventDefault();
          run(() =>
            put(path, {
              requiredApprovals: Number(n.value),
              allowSelfApproval: self.checked,
              dismissStaleApprovals: stale.checked,
              mergeRole: role.value,
            }),
          );
        },
      },
      h('div', { class: 'field' }, h('label', { for: 'prot-approvals' }, 'Approving reviews a merge needs'), n),
      h('div', { class: 'field check' }, self, h('label', { for: 'prot-self' }, 'The author’s own approval counts')),
      h('div', { class: 'field check' }, stale, h('label', { for: 'prot-stale' }, 'A new commit on the pull’s branch dismisses earlier approvals')),
      h('div', { class: 'field' }, h('label', { for: 'prot-role' }, 'Who may merge (role)'), role),
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'submit', class: 'primary' }, on ? 'Save protection' : 'Protect'),
        on ? h('button', { type: 'button', class: 'danger-link', onclick: () => run(() => del(path)) }, 'Remove protection') : null,
      ),
      msg,
    ),
  );
}
