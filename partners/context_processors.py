from .selectors import membership_for_user


def membership(request):
    """The signed-in user's membership and partner, for the navigation."""
    if not hasattr(request, "_membership"):
        request._membership = membership_for_user(getattr(request, "user", None))
    m = request._membership
    return {"membership": m, "current_partner": m.partner if m else None}
