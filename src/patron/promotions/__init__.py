"""Promotions: coupons, cart pricing and the rewards catalog."""
