// The demo shop's own logic: a catalog, a cart kept in localStorage, and the calls a real
// storefront makes to the tracker (window.cartwatch, set up by the snippet in <head>).
const CATALOG = [
  { product_id: 'boot', sku: 'SH-001', name: 'Tall Boot', category: 'Shoes', brand: 'Acme', price: 79.95 },
  { product_id: 'sock', sku: 'SO-002', name: 'Wool Sock', category: 'Socks', brand: 'Acme', price: 4.5 },
  { product_id: 'hat', sku: 'HA-003', name: 'Felt Hat', category: 'Hats', brand: 'Hearth', price: 20 },
];
const CURRENCY = 'EUR';

const product = (id) => CATALOG.find((p) => p.product_id === id);
const cart = () => JSON.parse(localStorage.getItem('demo_cart') || '[]');
const saveCart = (lines) => localStorage.setItem('demo_cart', JSON.stringify(lines));
const total = (lines) => Math.round(lines.reduce((s, l) => s + l.price * l.quantity, 0) * 100) / 100;
const withUrl = (p) => ({ ...p, currency: CURRENCY, url: `${location.origin}/product.html?id=${p.product_id}` });

function addToCart(id) {
  const lines = cart();
  const line = lines.find((l) => l.product_id === id);
  if (line) line.quantity += 1;
  else lines.push({ ...product(id), quantity: 1 });
  saveCart(lines);
  cartwatch.productAdded({ ...withUrl(product(id)), quantity: 1 });
  render();
}

function removeFromCart(id) {
  saveCart(cart().filter((l) => l.product_id !== id));
  cartwatch.productRemoved({ ...withUrl(product(id)) });
  render();
}

function checkout(event) {
  event.preventDefault();
  const email = document.getElementById('email').value;
  cartwatch.identify(email, { email, firstName: document.getElementById('name').value });
  cartwatch.checkoutStarted({ value: total(cart()), currency: CURRENCY, products: cart() });
  document.getElementById('place').hidden = false;
}

function placeOrder() {
  const lines = cart();
  const orderId = 'demo-' + Date.now();
  cartwatch.orderCompleted({ order_id: orderId, total: total(lines), currency: CURRENCY, products: lines });
  saveCart([]);
  document.getElementById('done').textContent = `Thank you! Order ${orderId} is placed.`;
  render();
}

function render() {
  const list = document.getElementById('products');
  if (list) {
    list.innerHTML = CATALOG.map(
      (p) => `<li>${p.name} (${p.price} ${CURRENCY})
        <a id="view-${p.product_id}" href="product.html?id=${p.product_id}">view</a>
        <button id="add-${p.product_id}" onclick="addToCart('${p.product_id}')">Add to cart</button></li>`,
    ).join('');
  }
  const lines = document.getElementById('cart');
  if (lines) {
    lines.innerHTML = cart()
      .map((l) => `<li>${l.quantity} x ${l.name} <button id="remove-${l.product_id}" onclick="removeFromCart('${l.product_id}')">Remove</button></li>`)
      .join('') || '<li>(empty)</li>';
  }
  const count = document.getElementById('count');
  if (count) count.textContent = String(cart().reduce((n, l) => n + l.quantity, 0));
}

window.addEventListener('DOMContentLoaded', () => {
  render();
  const page = document.body.dataset.page;
  cartwatch.page(page);
  if (page === 'Product') {
    const p = product(new URLSearchParams(location.search).get('id')) || CATALOG[0];
    document.getElementById('title').textContent = p.name;
    document.getElementById('add').onclick = () => addToCart(p.product_id);
    cartwatch.productViewed(withUrl(p));
  }
  if (page === 'Cart') cartwatch.cartUpdated(cart().map(withUrl), { currency: CURRENCY });
  const optOut = document.getElementById('opt-out');
  if (optOut) optOut.onclick = () => cartwatch.optOut();
});
