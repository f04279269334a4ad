// Open a notebook in a running JupyterLab 4 or Notebook 7 (both built on JupyterLab's application
// shell), run every cell from the browser, wait until every code cell has run (or one raised),
// check both kdviz views are in the page, list widget descriptions whose text is cut or starts on a
// clipping edge, and take a screenshot. With STATIC, URL is a static HTML page (nbconvert's): only
// the views' HTML fallbacks are looked for.
// Usage: node run_notebook.js URL PNG [TIMEOUT_MS] [STATIC]   (playwright-core with Debian's chromium)
const { chromium } = require('playwright-core');
const [url, png, timeoutArg, staticArg] = process.argv.slice(2);
const staticPage = staticArg === 'static';
const timeout = Number(timeoutArg || 240000);
// once the last cell has run, a view that is not in the page within this time is not coming
const renderGrace = 30000;
// the live widgets (ipywidgets HTML), not the static fallbacks a notebook file keeps; on a static
// page, those fallbacks
const heatmapSelector = staticPage ? '.kdviz-attribution-view .kdviz-heatmap td'
  : '.widget-html .kdviz-attribution-view .kdviz-heatmap td';
const layerSelector = staticPage ? '.kdviz-layer-attention td' : '.widget-html .kdviz-layer-attention td';
const errorSelector = '[data-mime-type="application/vnd.jupyter.error"]';

// widget descriptions whose text is cut, or starts on the edge of a box that clips it (a letter's
// ink can start a pixel left of its advance, and that pixel column is then cut)
function clippedLabels() {
  const clipped = [];
  for (const label of document.querySelectorAll('.jp-OutputArea .widget-label')) {
    if (!label.textContent.trim() || !label.offsetParent) continue;
    const range = document.createRange();
    range.selectNodeContents(label);
    const text = range.getBoundingClientRect();
    for (let box = label; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.overflowX === 'visible' || style.display === 'inline') continue;  // nothing clipped here
      const rect = box.getBoundingClientRect();
      const left = rect.left + box.clientLeft, right = left + box.clientWidth;
      if (text.left < left + 1 || text.right > right + 0.5) {
        clipped.push({ label: label.textContent.trim(), text: [text.left, text.right], clip: [left, right],
                       by: box === label ? 'its own box' : box.className });
        break;
      }
    }
  }
  return clipped;
}

// the views' cells that are drawn (a box with a size), failing when either view is missing
async function countViews(page) {
  const visible = elements => elements.filter(e => e.getBoundingClientRect().width > 0).length;
  const found = { heatmap_cells: await page.$$eval(heatmapSelector, visible),
                  layer_attention_cells: await page.$$eval(layerSelector, visible) };
  if (found.heatmap_cells === 0 || found.layer_attention_cells === 0) {
    throw new Error(`views missing: ${found.heatmap_cells} attribution heatmap cells, ` +
                    `${found.layer_attention_cells} layer-attention cells`);
  }
  return found;
}

function promptStates() {
  return [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1250, height: 1000 } });
  try {
    if (staticPage) {
      await page.goto(url, { waitUntil: 'load', timeout });
      const found = await countViews(page);
      await page.locator('.kdviz-attribution-view').first().scrollIntoViewIfNeeded().catch(() => {});
      await page.screenshot({ path: png });
      console.log(JSON.stringify({ ...found, clipped_labels: [], screenshot: png }));
      return;
    }
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout });
    // JupyterLab runs with expose_app_in_browser: drive it through its commands, not menu clicks
    await page.waitForFunction(() => window.jupyterapp && window.jupyterapp.shell.currentWidget &&
                                     window.jupyterapp.shell.currentWidget.sessionContext, null, { timeout });
    await page.waitForTimeout(2000);
    const kernelDialog = page.locator('.jp-Dialog .jp-mod-accept');
    if (await kernelDialog.count()) await kernelDialog.first().click();
    await page.evaluate(async () => {
      const panel = window.jupyterapp.shell.currentWidget;
      await panel.context.ready;
      await panel.sessionContext.ready;
      // the saved outputs would pass every check below: start from an empty notebook
      await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
      window.jupyterapp.commands.execute('notebook:run-all-cells');
    });
    // done when every code cell shows an execution count ("[7]:"); a raising cell stops Run All
    const allRun = page.waitForFunction(
      () => { const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
              return prompts.length > 0 && prompts.every(p => /\[\d+\]/.test(p.textContent)); },
      null, { timeout, polling: 1000 }).then(() => ({}));
    const failure = page.waitForSelector(errorSelector, { timeout })
      .then(async element => ({ error: await element.innerText() }));
    const first = await Promise.race([allRun, failure]).catch(async error => {
      throw new Error(`the notebook did not finish in ${timeout} ms; cell prompts: ` +
                      JSON.stringify(await page.evaluate(promptStates)) + '\n' + error.message);
    });
    allRun.catch(() => {}); failure.catch(() => {});
    if (first.error) throw new Error('a cell raised: ' + first.error.slice(0, 3000));
    try {
      await page.waitForSelector(heatmapSelector, { timeout: renderGrace });
      await page.waitForSelector(layerSelector, { timeout: renderGrace });
    } catch (error) { /* counted and reported below */ }
    const found = await countViews(page);
    found.clipped_labels = await page.evaluate(clippedLabels);
    await page.evaluate(() => document.querySelectorAll('.jp-toast-container, .Toastify').forEach(e => e.remove()));
    await page.locator('.kdviz-attribution-view').first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: png });
    console.log(JSON.stringify({ ...found, screenshot: png }));
  } catch (error) {
    // the page as it was when the check failed, for the test's artifacts
    await page.screenshot({ path: png }).catch(() => {});
    throw error;
  } finally {
    await browser.close();
  }
})().catch(error => { console.error(String(error && error.stack || error)); process.exit(1); });
