// Open a notebook in a running JupyterLab, run all cells, wait until both kdviz views are in the
// page, and take a screenshot. Used by docs/jupyterlab_screenshot.py (playwright-core + Debian's chromium).
// Usage: node jupyterlab_views.js URL PNG
const { chromium } = require('playwright-core');
const [url, png] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1250, height: 1000 } });
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 120000 });
  await page.waitForSelector('.jp-Notebook', { timeout: 120000 });
  await page.waitForTimeout(3000);
  await page.click('text=Run');
  await page.click('text=Run All Cells');
  await page.waitForSelector('.kdviz-heatmap td', { timeout: 300000 });
  await page.waitForSelector('.jp-OutputArea-output img', { timeout: 300000 });
  const cells = await page.$$eval('.kdviz-heatmap td', els => els.length);
  if (cells === 0) throw new Error('the attribution heatmap has no cells');
  await page.evaluate(() => document.querySelectorAll('.jp-toast-container, .Toastify').forEach(e => e.remove()));
  await page.screenshot({ path: png });
  console.log(`attribution heatmap cells: ${cells}; screenshot: ${png}`);
  await browser.close();
})().catch(error => { console.error(error); process.exit(1); });
