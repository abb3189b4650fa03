// page_signin.js: /signin. Paste an API token once; it is checked against the server and kept in
// this browser (auth.js). Until accounts and sessions land, this is how a person signs in.
import { signIn, currentUser, signOut } from './auth.js';
import { h, fill, errorBox } from './dom.js';
import { navigate, links } from './router.js';

export default async function render({ main, query }) {
  document.title = 'Sign in · tablehub';
  const next = query.get('next');
  const safeNext = next && next.startsWith('/') && !next.startsWith('//') ? next : links.home();
  const user = await currentUser();
  const msg = h('div', { 'aria-live': 'polite' });
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help',
  });
  const form = h(
    'form',
    {
      class: 'card narrow',
      onsubmit: async (e) => {
        e.preventDefault();
        fill(msg);
        try {
          await signIn(input.value.trim());
          dispatchEvent(new Event('tablehub:signed-in'));
          navigate(safeNext, { replace: true });
        } catch (err) {
          fill(msg, errorBox(err));
          input.focus();
        }
      },
    },
    h('label', { for: 'token' }, 'API token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'help' },
      'An administrator creates your user and its first token with ',
      h('code', {}, 'tablehub user add NAME'),
      ', and more tokens with ',
      h('code', {}, 'tablehub token create NAME'),
      '. The token is kept in this browser until you sign out.',
    ),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    msg,
  );
  fill(
    main,
    h('h1', { tabindex: '-1' }, 'Sign in'),
    user
      ? h(
          'p',
          {},
          `You are signed in as ${user}. Paste another token to switch users, or `,
          h('button', {
            type: 'button',
            class: 'link',
            text: 'sign out',
            onclick: () => {
              signOut();
              dispatchEvent(new Event('tablehub:signed-in'));
              navigate(links.signin(next));
            },
          }),
          '.',
        )
      : null,
    form,
  );
  input.focus();
}
