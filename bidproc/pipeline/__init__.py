"""The queue and the actors that carry a bid through intake, signature and archive."""
