// main.js: the app's entry point. Shows who is signed in, and on every URL change loads the page
// module the router names and lets it draw into <main>. A page that polls or fetches takes the
// AbortSignal of its context: leaving the page aborts it, so nothing keeps running behind the
// next page.
import { currentUser, signOut } from './auth.js';
import { h, fill, errorBox } from './dom.js';
import { start, match, links, navigate } from './router.js';

const main = document.getElementById('main');
const who = document.getElementById('who');
let current = null; // {controller}
let first = true;

async function showWho() {
  const user = await currentUser();
  if (user) {
    fill(
      who,
      h('span', { class: 'muted' }, 'Signed in as '),
      h('strong', {}, user),
      h('button', {
        type: 'button',
        class: 'link',
        text: 'Sign out',
        onclick: async () => {
          await signOut();
          showWho();
          navigate(links.home());
        },
      }),
    );
  } else {
    fill(who, h('a', { href: links.signin(location.pathname + location.search) }, 'Sign in'));
  }
}

async function render() {
  // Busy until the page has drawn what it fetches (tests and assistive technology wait for it).
  main.setAttribute('aria-busy', 'true');
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { controller };
  // Keep keyboard focus on the same control across a re-render (e.g. pressing Next page).
  const focusKey = document.activeElement?.dataset?.focus;
  const m = match(location.pathname);
  const ctx = {
    main,
    params: m ? m.params : {},
    query: new URLSearchParams(location.search),
    signal: controller.signal,
    user: await currentUser(),
    // A page that goes on polling calls this once it has drawn itself.
    ready: () => controller.signal.aborted || main.removeAttribute('aria-busy'),
  };
  if (controller.signal.aborted) return;
  try {
    if (!m) {
      document.title = 'Not found · tablehub';
      fill(main, h('h1', {}, 'Not found'), h('p', {}, 'No page has this address. ', h('a', { href: '/' }, 'Go to the databases.')));
    } else {
      const mod = await import('./' + m.module);
      if (controller.signal.aborted) return;
      await mod.default(ctx);
    }
  } catch (e) {
    if (e.name === 'AbortError' || controller.signal.aborted) return;
    fill(main, h('h1', {}, 'Something went wrong'), errorBox(e));
  }
  if (controller.signal.aborted) return;
  main.removeAttribute('aria-busy');
  const again = focusKey && main.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`);
  if (again && !again.disabled) again.focus();
  else if (!first) (main.querySelector('h1') || main).focus({ preventScroll: false });
  first = false;
}

addEventListener('tablehub:signed-in', showWho);
showWho();
start(render);
