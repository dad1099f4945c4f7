// fragment.js — the join link's fragment (#room=…&token=…&key=…) is read
// once, then cleared from the address bar and the tab's history
// (history.replaceState), so a token does not stay on a projected screen,
// in a screenshot or in the back button's list. This tab keeps it in
// sessionStorage (never sent anywhere, gone with the tab), so a reload
// still rejoins.
const KEY = 'patchbay.fragment';

// The page's URL with its join fragment, which is cleared from view.
export function takeJoinUrl() {
  let hash = location.hash;
  try {
    if (hash.length > 1) sessionStorage.setItem(KEY, hash);
    else hash = sessionStorage.getItem(KEY) || '';
  } catch { /* storage disabled: a reload then needs the link again */ }
  if (location.hash) history.replaceState(history.state, '', location.pathname + location.search);
  return location.origin + location.pathname + location.search + hash;
}
