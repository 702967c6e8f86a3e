// Screenshot of the sandbox chat page with a captioned photo (docs/images/sandbox-chat.png).
// Needs Debian's chromium and `npm install playwright-core` in some folder on NODE_PATH; with
// `captionbot up` running:  node docs/images/sandbox_screenshot.js http://127.0.0.1:8081 PHOTO.jpg OUT.png
const { chromium } = require("playwright-core");

(async () => {
  const [url, photo, out] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 720, height: 820 } });
  await page.goto(url + "/?user=" + (5000 + Math.floor(Math.random() * 90000)));  // a fresh chat
  await page.waitForSelector("#empty:not(.hidden)");
  await page.setInputFiles("#file", photo);
  await page.waitForSelector(".row.theirs .keyboard button", { timeout: 60000 });
  await page.waitForTimeout(500);
  await page.click(".row.theirs .keyboard button >> nth=0"); // 👍
  await page.waitForFunction(() => [...document.querySelectorAll(".row.theirs .keyboard button")].some((b) => b.textContent.includes("✓")), null, { timeout: 15000 });
  await page.waitForTimeout(400);
  await page.screenshot({ path: out });
  await browser.close();
})().catch((error) => { console.error(error); process.exit(1); });
