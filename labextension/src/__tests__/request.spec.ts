import {
  notebookEndpoint,
  requestAPI,
  requestText,
  ReproRequestError
} from '../request';
import { BASE_URL, failure, mockServer, settings } from './server';

describe('requestAPI', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  afterEach(() => {
    server?.restore();
    server = null;
  });

  it('joins the base URL and the repro namespace and parses JSON', async () => {
    server = mockServer({
      'GET status': () => ({ body: { version: '1.0' } })
    });
    const data = await requestAPI<{ version: string }>(
      'status',
      {},
      settings()
    );
    expect(data).toEqual({ version: '1.0' });
    expect(server.calls[0].url).toBe(`${BASE_URL}repro/status`);
  });

  it('answers null for an empty body', async () => {
    server = mockServer({ 'DELETE jobs/x': () => ({ status: 202 }) });
    await expect(
      requestAPI('jobs/x', { method: 'DELETE' }, settings())
    ).resolves.toBeNull();
  });

  it("maps an error status to a ReproRequestError with the server's message", async () => {
    server = mockServer({
      'GET environments/nope': () => ({
        status: 404,
        body: { message: 'no environment named nope', reason: 'not found' }
      })
    });
    const error = await failure(
      requestAPI('environments/nope', {}, settings())
    );
    expect(error).toBeInstanceOf(ReproRequestError);
    expect(error.message).toBe('no environment named nope');
    expect(error.status).toBe(404);
    expect(error.reason).toBe('not found');
    expect(error.url).toBe(`${BASE_URL}repro/environments/nope`);
  });

  it('says the extension is missing for a 404 without a JSON body', async () => {
    server = mockServer({});
    const error = await failure(requestAPI('status', {}, settings()));
    expect(error).toBeInstanceOf(ReproRequestError);
    expect(error.status).toBe(404);
    expect(error.message).toMatch(/server extension did not answer/);
    expect(error.reason).toBeNull();
  });

  it('uses the status line for a non-JSON error page', async () => {
    server = mockServer({
      'GET status': () => ({ status: 502, body: '<html>Bad gateway</html>' })
    });
    const error = await failure(requestAPI('status', {}, settings()));
    expect(error.status).toBe(502);
    expect(error.message).toMatch(/502/);
  });

  it('maps a network failure to status 0', async () => {
    server = mockServer({
      'GET status': () => new TypeError('Failed to fetch')
    });
    const error = await failure(requestAPI('status', {}, settings()));
    expect(error).toBeInstanceOf(ReproRequestError);
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/Could not reach the Jupyter server/);
    expect(error.message).toMatch(/Failed to fetch/);
  });

  it('refuses a successful body that is not JSON', async () => {
    server = mockServer({ 'GET status': () => ({ body: 'not json' }) });
    const error = await failure(requestAPI('status', {}, settings()));
    expect(error).toBeInstanceOf(ReproRequestError);
    expect(error.message).toMatch(/not JSON/);
  });
});

describe('requestText', () => {
  it('returns the text and the response headers', async () => {
    const server = mockServer({
      'GET environments/a/export?format=yaml': () => ({
        body: 'name: a\n',
        headers: { 'X-Jupyter-Repro-Source': 'embedded' }
      })
    });
    try {
      const { text, response } = await requestText(
        'environments/a/export?format=yaml',
        {},
        settings()
      );
      expect(text).toBe('name: a\n');
      expect(response.headers.get('X-Jupyter-Repro-Source')).toBe('embedded');
    } finally {
      server.restore();
    }
  });

  it('raises the server error like requestAPI', async () => {
    const server = mockServer({
      'GET environments/v/export?format=explicit': () => ({
        status: 422,
        body: {
          message: 'a venv has no explicit list',
          reason: 'cannot export'
        }
      })
    });
    try {
      const error = await failure(
        requestText('environments/v/export?format=explicit', {}, settings())
      );
      expect(error.status).toBe(422);
      expect(error.message).toBe('a venv has no explicit list');
    } finally {
      server.restore();
    }
  });
});

describe('notebookEndpoint', () => {
  it('encodes each segment and keeps the slashes', () => {
    expect(notebookEndpoint('dir one/my nb#1.ipynb', 'drift')).toBe(
      'notebooks/dir%20one/my%20nb%231.ipynb/drift'
    );
  });

  it('drops empty segments', () => {
    expect(notebookEndpoint('/a//b.ipynb', 'environment')).toBe(
      'notebooks/a/b.ipynb/environment'
    );
  });
});
