"""What the law keeps and for how long: statutes, retention rules and policy, tags, legal holds,
purge, and GDPR subject requests. Depends on models/ only."""
