// Open a notebook in a running JupyterLab, run every cell from the browser, wait until both kdviz
// views are in the page, check no cell raised, and take a screenshot.
// Usage: node run_notebook.js URL PNG [TIMEOUT_MS]   (playwright-core with Debian's chromium)
const { chromium } = require('playwright-core');
const [url, png, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg || 240000);

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1250, height: 1000 } });
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout });
    await page.waitForSelector('.jp-Notebook', { timeout });
    await page.waitForSelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', { timeout }).catch(() => {});
    await page.click('text=Run');
    await page.click('text=Run All Cells');
    const errorSelector = '[data-mime-type="application/vnd.jupyter.error"]';
    const failure = page.waitForSelector(errorSelector, { timeout })
      .then(async element => ({ error: await element.innerText() }), () => ({}));
    const views = Promise.all([
      page.waitForSelector('.kdviz-heatmap td', { timeout }),
      page.waitForSelector('img.kdviz-layer-attention[src]', { timeout }),
    ]).then(() => ({ views: true }));
    views.catch(() => {});
    const first = await Promise.race([views, failure]);
    if (first.error) throw new Error('a cell raised: ' + first.error.slice(0, 3000));
    // every cell has run (no "[*]" prompt left) and none raised
    await page.waitForFunction(() => ![...document.querySelectorAll('.jp-InputArea-prompt')]
      .some(prompt => prompt.textContent.includes('*')), null, { timeout });
    const errors = await page.$$eval(errorSelector, elements => elements.map(e => e.innerText));
    if (errors.length) throw new Error('a cell raised: ' + errors[0].slice(0, 3000));
    const cells = await page.$$eval('.kdviz-heatmap td', elements => elements.length);
    const layerViews = await page.$$eval('img.kdviz-layer-attention', elements => elements.length);
    if (cells === 0 || layerViews === 0) throw new Error(`views missing: ${cells} heatmap cells, ${layerViews} layer-attention images`);
    await page.evaluate(() => document.querySelectorAll('.jp-toast-container, .Toastify').forEach(e => e.remove()));
    await page.locator('.kdviz-attribution-view').first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: png });
    console.log(JSON.stringify({ heatmap_cells: cells, layer_attention_images: layerViews, screenshot: png }));
  } finally {
    await browser.close();
  }
})().catch(error => { console.error(String(error && error.stack || error)); process.exit(1); });
