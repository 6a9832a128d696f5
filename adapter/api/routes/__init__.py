"""One router per area; adapter.api.app includes them."""
