"""What customers did with what they were shown: impressions, clicks, add-to-carts and purchases."""
