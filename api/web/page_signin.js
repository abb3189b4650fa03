// page_signin.js: /signin. A user name and password (a session: auth.js), or, as a second
// option, an API token pasted once. Either is checked by the server before the page moves on.
import { signIn, signInPassword, currentUser, signOut } from './auth.js';
import { h, fill, errorBox } from './dom.js';
import { navigate, links } from './router.js';

export default async function render({ main, query }) {
  document.title = 'Sign in · tablehub';
  const next = query.get('next');
  const safeNext = next && next.startsWith('/') && !next.startsWith('//') ? next : links.home();
  const user = await currentUser();
  const done = () => {
    dispatchEvent(new Event('tablehub:signed-in'));
    navigate(safeNext, { replace: true });
  };

  // A user name and password.
  const pmsg = h('div', { 'aria-live': 'polite' });
  const name = h('input', { id: 'username', name: 'username', autocomplete: 'username', spellcheck: 'false', required: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const pform = h(
    'form',
    {
      id: 'password-form',
      class: 'card narrow',
      onsubmit: async (e) => {
        e.preventDefault();
        fill(pmsg);
        try {
          await signInPassword(name.value.trim(), pass.value);
          done();
        } catch (err) {
          pass.value = '';
          fill(pmsg, errorBox(err));
          pass.focus();
        }
      },
    },
    h('label', { for: 'username' }, 'User name'),
    name,
    h('label', { for: 'password' }, 'Password'),
    pass,
    h('p', { class: 'help' }, 'You stay signed in in this browser for a while, until you sign out.'),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    pmsg,
  );

  // Or an API token.
  const tmsg = h('div', { 'aria-live': 'polite' });
  const token = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help',
  });
  const tform = h(
    'form',
    {
      id: 'token-form',
      onsubmit: async (e) => {
        e.preventDefault();
        fill(tmsg);
        try {
          await signIn(token.value.trim());
          done();
        } catch (err) {
          fill(tmsg, errorBox(err));
          token.focus();
        }
      },
    },
    h('label', { for: 'token' }, 'API token'),
    token,
    h(
      'p',
      { id: 'token-help', class: 'help' },
      'Create one with ',
      h('code', {}, 'tablehub token create NAME'),
      ' or POST /api/v1alpha1/user/tokens. The token is kept in this browser until you sign out.',
    ),
    h('button', { type: 'submit' }, 'Sign in with the token'),
    tmsg,
  );
  const tokenBox = h('details', { class: 'card narrow create', id: 'token-option' }, h('summary', {}, 'Or paste an API token'), tform);

  fill(
    main,
    h('h1', { tabindex: '-1' }, 'Sign in'),
    user
      ? h(
          'p',
          {},
          `You are signed in as ${user}. Sign in again to switch users, or `,
          h('button', {
            type: 'button',
            class: 'link',
            text: 'sign out',
            onclick: async () => {
              await signOut();
              dispatchEvent(new Event('tablehub:signed-in'));
              navigate(links.signin(next));
            },
          }),
          '.',
        )
      : null,
    pform,
    tokenBox,
  );
  name.focus();
}
