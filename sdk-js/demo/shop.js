// The demo shop's own logic: a catalog, a cart and a signed-in customer kept in
// localStorage, and the calls a real storefront makes to the tracker (window.cartwatch, set
// up by the snippet in <head>). Prices are counted in cents, so totals are exact.
//
// Identity: the shop gives each e-mail an opaque customer id ('u_' and 16 random hex
// digits, kept per e-mail in localStorage, as a shop's customer table would), and that id is
// the userId the tracker sends. The e-mail goes into the traits only: a userId ends up in
// URLs (GET /v1/customers/{userId}), logs and webhooks, where an e-mail would be PII.
const CURRENCY = 'EUR';
const CATALOG = [
  { product_id: 'boot', sku: 'SH-001', name: 'Tall Boot', category: 'Shoes', brand: 'Acme', cents: 7995,
    blurb: 'Full-grain leather, a leather sole stitched on by hand, and a shaft that keeps out snow. Resoleable for decades.' },
  { product_id: 'sock', sku: 'SO-002', name: 'Wool Sock', category: 'Socks', brand: 'Acme', cents: 450,
    blurb: 'Merino and nylon, cushioned where the boot rubs. Warm when wet, never itchy.' },
  { product_id: 'hat', sku: 'HA-003', name: 'Felt Hat', category: 'Hats', brand: 'Hearth', cents: 2000,
    blurb: 'Pressed wool felt with a grosgrain band. Sheds rain and keeps its shape.' },
  { product_id: 'mitten', sku: 'AC-004', name: 'Wool Mittens', category: 'Accessories', brand: 'Hearth', cents: 2900,
    blurb: 'Boiled wool outside, fleece inside, a ribbed cuff that stays under the sleeve.' },
  { product_id: 'mug', sku: 'HO-005', name: 'Enamel Mug', category: 'Home', brand: 'Hearth', cents: 1250,
    blurb: 'Steel with a glass enamel coat. For the tent, the garden and the desk.' },
  { product_id: 'tote', sku: 'BA-006', name: 'Canvas Tote', category: 'Bags', brand: 'Acme', cents: 2490,
    blurb: 'Waxed cotton canvas with leather handles. Carries a week of groceries.' },
];

const money = new Intl.NumberFormat('en-IE', { style: 'currency', currency: CURRENCY });
const fmt = (cents) => money.format(cents / 100);
const $ = (id) => document.getElementById(id);
const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const read = (key, fallback) => {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
};
const write = (key, value) => (value == null ? localStorage.removeItem(key) : localStorage.setItem(key, JSON.stringify(value)));
const randomHex = (bytes) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');

const product = (id) => CATALOG.find((p) => p.product_id === id);

// The cart: [{ product_id, quantity }], prices from the catalog.
const cart = () =>
  read('demo_cart', [])
    .filter((l) => product(l.product_id) && l.quantity > 0)
    .map((l) => ({ ...product(l.product_id), quantity: Math.floor(l.quantity) }));
const saveCart = (lines) => write('demo_cart', lines.map((l) => ({ product_id: l.product_id, quantity: l.quantity })));
const totalCents = (lines) => lines.reduce((s, l) => s + l.cents * l.quantity, 0);
const itemCount = (lines) => lines.reduce((n, l) => n + l.quantity, 0);

// A product as the tracker sends it (E-commerce Spec v2).
const tracked = (p, quantity) => ({
  product_id: p.product_id,
  sku: p.sku,
  name: p.name,
  category: p.category,
  brand: p.brand,
  price: p.cents / 100,
  currency: CURRENCY,
  url: `${location.origin}/product.html?id=${p.product_id}`,
  image_url: `${location.origin}/img/${p.product_id}.svg`,
  ...(quantity ? { quantity } : {}),
});

// The signed-in customer: { userId, email, firstName } or null.
const customer = () => read('demo_customer', null);

// Signs in: the opaque customer id of this e-mail (made on its first sign-in), then
// identify with it and the e-mail and name as traits.
function signIn(email, firstName) {
  const key = email.trim().toLowerCase();
  const accounts = read('demo_accounts', {});
  if (!accounts[key]) accounts[key] = { userId: 'u_' + randomHex(8) };
  write('demo_accounts', accounts);
  const who = { userId: accounts[key].userId, email: email.trim(), firstName: firstName.trim() };
  write('demo_customer', who);
  cartwatch.identify(who.userId, { email: who.email, firstName: who.firstName });
  return who;
}

// Signs out: the tracker forgets the userId and starts a new anonymous visitor; the cart,
// which was the customer's, goes too.
function signOut() {
  write('demo_customer', null);
  saveCart([]);
  cartwatch.reset();
  location.href = 'index.html';
}

function toast(text) {
  const el = $('toast');
  if (!el) return;
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('show'), 1800);
}

function addToCart(id, quantity = 1) {
  const p = product(id);
  if (!p || !(quantity >= 1)) return;
  const lines = cart();
  const line = lines.find((l) => l.product_id === id);
  if (line) line.quantity += quantity;
  else lines.push({ ...p, quantity });
  saveCart(lines);
  cartwatch.productAdded(tracked(p, quantity));
  toast(`${quantity} x ${p.name} added to your cart`);
  render();
}

// Takes `quantity` of the product out of the cart; without one, the whole line.
function removeFromCart(id, quantity) {
  const p = product(id);
  const lines = cart();
  const line = lines.find((l) => l.product_id === id);
  if (!p || !line) return;
  line.quantity = quantity ? line.quantity - quantity : 0;
  saveCart(lines.filter((l) => l.quantity > 0));
  cartwatch.productRemoved(tracked(p, quantity));
  render();
}

function renderHeader() {
  const count = $('count');
  if (count) count.textContent = String(itemCount(cart()));
  const account = $('account');
  const who = customer();
  if (account && who) {
    account.innerHTML = `Hi, ${esc(who.firstName || who.email)} &middot; <a id="logout" href="index.html">Sign out</a>`;
    $('logout').onclick = (e) => {
      e.preventDefault();
      signOut();
    };
  } else if (account) {
    const here = location.pathname.slice(1) || 'index.html';
    $('login').href = here === 'login.html' ? 'login.html' : `login.html?next=${encodeURIComponent(here + location.search)}`;
  }
}

function renderProducts() {
  $('products').innerHTML = CATALOG.map(
    (p) => `<li class="card">
      <a href="product.html?id=${p.product_id}" tabindex="-1"><img src="img/${p.product_id}.svg" alt="${esc(p.name)}"></a>
      <div class="body">
        <span class="meta">${esc(p.brand)} &middot; ${esc(p.category)}</span>
        <h2><a id="view-${p.product_id}" href="product.html?id=${p.product_id}">${esc(p.name)}</a></h2>
        <div class="buy"><span class="price">${fmt(p.cents)}</span>
          <button id="add-${p.product_id}" data-add="${p.product_id}">Add to cart</button></div>
      </div></li>`,
  ).join('');
}

function renderCart() {
  const lines = cart();
  const box = $('cart');
  const checkout = $('checkout');
  if (checkout) checkout.setAttribute('aria-disabled', String(!lines.length));
  if (!lines.length) {
    box.innerHTML = '<div class="empty">Your cart is empty. <a href="index.html">Find something warm.</a></div>';
    return;
  }
  box.innerHTML = `<table class="lines">
    <thead><tr><th>Product</th><th class="num">Price</th><th>Quantity</th><th class="num">Total</th><th></th></tr></thead>
    <tbody>${lines
      .map(
        (l) => `<tr id="line-${l.product_id}">
          <td><img src="img/${l.product_id}.svg" alt=""><a href="product.html?id=${l.product_id}">${esc(l.name)}</a></td>
          <td class="num">${fmt(l.cents)}</td>
          <td><span class="stepper">
            <button id="dec-${l.product_id}" data-dec="${l.product_id}" aria-label="One less">&minus;</button>
            <span id="qty-${l.product_id}">${l.quantity}</span>
            <button id="inc-${l.product_id}" data-inc="${l.product_id}" aria-label="One more">+</button></span></td>
          <td class="num" id="line-total-${l.product_id}">${fmt(l.cents * l.quantity)}</td>
          <td><button class="linkish" id="remove-${l.product_id}" data-remove="${l.product_id}">Remove</button></td></tr>`,
      )
      .join('')}</tbody>
    <tfoot>
      <tr><td colspan="3">Delivery</td><td class="num">free</td><td></td></tr>
      <tr><td colspan="3">Total (incl. VAT)</td><td class="num" id="total">${fmt(totalCents(lines))}</td><td></td></tr>
    </tfoot></table>`;
}

// The order summary of the checkout: the cart, or the order just placed.
function renderSummary(lines = cart()) {
  $('cart').innerHTML = lines.length
    ? `<ul>${lines
        .map((l) => `<li><span>${l.quantity} x ${esc(l.name)}</span><span>${fmt(l.cents * l.quantity)}</span></li>`)
        .join('')}<li><span>Delivery</span><span>free</span></li>
        <li class="total"><span>Total</span><span id="total">${fmt(totalCents(lines))}</span></li></ul>`
    : '<p class="hint">Your cart is empty. <a href="index.html">Back to the shop</a></p>';
}

function render() {
  renderHeader();
  if ($('products')) renderProducts();
  if (document.body.dataset.page === 'Cart') renderCart();
  if (document.body.dataset.page === 'Checkout' && !placed) renderSummary();
}

// Checkout. Contact (sign in, or a guest's e-mail and name) comes first; then Checkout
// Started, delivery and Place order. An order is placed once: the button is disabled at the
// first click, and an empty cart (after the order, or in another tab) places nothing.
let placed = null;

function startCheckout() {
  const who = customer();
  $('form').hidden = !!who;
  $('signed-in').hidden = !who;
  if (who) $('who').textContent = `${who.firstName} (${who.email})`;
  const lines = cart();
  $('checkout-empty').hidden = lines.length > 0;
  $('contact-step').hidden = !lines.length;
  if (!who || !lines.length) return;
  cartwatch.checkoutStarted({ value: totalCents(lines) / 100, currency: CURRENCY, products: lines.map((l) => tracked(l, l.quantity)) });
  $('delivery-step').hidden = false;
}

function placeOrder(event) {
  event.preventDefault();
  const button = $('place');
  const lines = cart();
  if (placed || button.disabled || !lines.length) return;
  button.disabled = true;
  const orderId = 'ORD-' + randomHex(4).toUpperCase();
  const total = totalCents(lines) / 100;
  placed = { orderId, lines };
  saveCart([]);
  cartwatch.orderCompleted({
    order_id: orderId,
    total,
    shipping: 0,
    currency: CURRENCY,
    products: lines.map((l) => tracked(l, l.quantity)),
  });
  cartwatch.flush();
  button.textContent = 'Order placed';
  const who = customer();
  $('done').textContent = `Thank you${who ? ', ' + who.firstName : ''}! Order ${orderId} (${fmt(totalCents(lines))}) is placed.${
    who ? ` A confirmation goes to ${who.email}.` : ''
  }`;
  renderHeader();
  renderSummary(lines);
}

function nextPage() {
  const next = new URLSearchParams(location.search).get('next') || '';
  // Only a page of this shop: never an open redirect.
  return /^[a-z]+\.html(\?[\w=&%-]*)?$/.test(next) ? next : 'index.html';
}

function setUpOptOut() {
  const button = $('opt-out');
  if (!button) return;
  const show = () => {
    const off = localStorage.getItem('cw_optout') === '1';
    button.textContent = off ? 'Tracking is off: track me again' : 'Do not track me';
  };
  button.onclick = () => {
    if (localStorage.getItem('cw_optout') === '1') cartwatch.optIn();
    else cartwatch.optOut();
    show();
  };
  show();
}

window.addEventListener('DOMContentLoaded', () => {
  const page = document.body.dataset.page;
  render();
  cartwatch.page(page);
  setUpOptOut();
  document.addEventListener('click', (e) => {
    const t = e.target.closest('[data-add],[data-inc],[data-dec],[data-remove]');
    if (!t) return;
    if (t.dataset.add) addToCart(t.dataset.add);
    if (t.dataset.inc) addToCart(t.dataset.inc);
    if (t.dataset.dec) removeFromCart(t.dataset.dec, 1);
    if (t.dataset.remove) removeFromCart(t.dataset.remove);
  });

  if (page === 'Product') {
    const p = product(new URLSearchParams(location.search).get('id')) || CATALOG[0];
    document.title = `${p.name} | Acme Outfitters (Cartwatch demo shop)`;
    $('title').textContent = p.name;
    $('crumb').textContent = p.category;
    $('brand').textContent = `${p.brand} · ${p.category} · ${p.sku}`;
    $('price').textContent = fmt(p.cents);
    $('blurb').textContent = p.blurb;
    $('image').src = `img/${p.product_id}.svg`;
    $('image').alt = p.name;
    $('add').onclick = () => addToCart(p.product_id, Math.max(1, Math.min(99, Math.floor(Number($('qty').value)) || 1)));
    cartwatch.productViewed(tracked(p));
  }
  if (page === 'Cart') cartwatch.cartUpdated(cart().map((l) => tracked(l, l.quantity)), { currency: CURRENCY });
  if (page === 'Login') {
    $('login-form').onsubmit = (e) => {
      e.preventDefault();
      signIn($('login-email').value, $('login-name').value);
      location.href = nextPage();
    };
  }
  if (page === 'Checkout') {
    $('form').onsubmit = (e) => {
      e.preventDefault();
      signIn($('email').value, $('name').value);
      renderHeader();
      startCheckout();
    };
    $('delivery').onsubmit = placeOrder;
    startCheckout();
  }
});
