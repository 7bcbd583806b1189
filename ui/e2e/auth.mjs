// Auth: with tokens on, the UI without a token shows the login form; a viewer sees no
// mutating control, and the server answers 403 to the mutation the UI would have sent; an
// operator gets them back.
import { assert, newPage, screenshot } from './harness.mjs';

export const OPERATOR = 'operator-token-0123456789';
export const VIEWER = 'viewer-token-0123456789ab';
export const authConfig = `auth:
  tokens:
    - { name: op, token: ${OPERATOR}, role: operator }
    - { name: watcher, token: ${VIEWER}, role: viewer }
`;

async function login(page, url, token) {
  await page.goto(url + '/');
  await page.locator('[data-testid="login-form"]').waitFor();
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-testid="who"]').waitFor();
}

export async function authTest(server, browser) {
  const created = await server.api('/api/v1/sessions', {
    method: 'POST',
    headers: { Authorization: `Bearer ${OPERATOR}` },
    body: JSON.stringify({ name: 'guarded' }),
  });
  assert(created.status === 200, 'a session to look at');

  const { page, problems, context } = await newPage(browser);
  await page.goto(server.url + '/');
  await page.locator('[data-testid="login-form"]').waitFor();
  await screenshot(page, 'auth-login');
  await page.getByLabel('Token').fill('wrong-token-000000000');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'invalid token' }).waitFor();

  await page.getByLabel('Token').fill(VIEWER);
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert((await page.locator('[data-testid="who"]').innerText()) === 'watcher (viewer)', 'logged in as the viewer');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'skit_session');
  assert(session && session.httpOnly && session.sameSite === 'Strict', `an HttpOnly SameSite cookie (${JSON.stringify(session)})`);
  assert(await page.evaluate(() => !document.cookie.includes('skit_session')), 'scripts cannot read it');

  // Design: no saving.
  await page.locator('[data-testid="palette"]').waitFor();
  assert((await page.getByRole('button', { name: 'Save…' }).count()) === 0, 'no Save for a viewer');
  // Monitor: the session is listed, with no create, destroy, staging or tuning.
  await page.getByRole('button', { name: 'Monitor' }).click();
  await page.locator('[data-testid="session-guarded"]').waitFor();
  assert((await page.getByRole('button', { name: 'New session' }).count()) === 0, 'no New session for a viewer');
  assert((await page.locator('[aria-label="destroy guarded"]').count()) === 0, 'no destroy for a viewer');
  await page.locator('[data-testid="session-guarded"] button.link').click();
  await page.locator('[data-testid="session-title"]').waitFor();
  assert((await page.getByRole('button', { name: 'Edit (staging)' }).count()) === 0, 'no staging for a viewer');
  await screenshot(page, 'auth-viewer-monitor');
  // Convert: no run button.
  await page.getByRole('button', { name: 'Convert' }).click();
  await page.getByText('Your role may not run pipelines.').waitFor();

  // What the UI would have sent, with the viewer's cookie: 403.
  const answers = await page.evaluate(async () => {
    const create = await fetch('api/v1/sessions', { method: 'POST', body: JSON.stringify({ name: 'nope' }) });
    const destroy = await fetch('api/v1/sessions/guarded', { method: 'DELETE' });
    const save = await fetch('api/v1/samples/oneshot', { method: 'POST', body: JSON.stringify({ name: 'x', yaml: 'mode: oneshot\nsteps: []\n' }) });
    return [create.status, destroy.status, save.status, (await create.text()).trim()];
  });
  assert(answers[0] === 403 && answers[1] === 403 && answers[2] === 403, `the server refuses the viewer's mutations (${answers.join(', ')})`);
  const still = await (await server.api('/api/v1/sessions', { headers: { Authorization: `Bearer ${OPERATOR}` } })).json();
  assert(still.some((s) => s.name === 'guarded') && !still.some((s) => s.name === 'nope'), 'nothing changed on the server');

  // Sign out: back to the login form; an operator has the controls.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('[data-testid="login-form"]').waitFor();
  await login(page, server.url, OPERATOR);
  await page.getByRole('button', { name: 'Monitor' }).click();
  await page.getByRole('button', { name: 'New session' }).waitFor();
  assert((await page.locator('[aria-label="destroy guarded"]').count()) === 1, 'an operator may destroy');
  assert(problems.filter((p) => !p.includes('401') && !p.includes('403')).length === 0, `no console errors but the refused requests:\n${problems.join('\n')}`);
  await context.close();
}
