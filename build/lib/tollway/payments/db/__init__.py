"""SQL for payments: the only part of the package that speaks SQLAlchemy (with the services
that open transactions). Every state change is a conditional update, so racing writers
cannot both win; every insert that may race is an insert-or-ignore on a unique key."""
