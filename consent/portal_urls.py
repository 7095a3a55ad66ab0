from django.urls import path

from . import portal_views

app_name = "notices"

urlpatterns = [
    path("notices/", portal_views.NoticesView.as_view(), name="list"),
    path("notices/<uuid:pk>/confirm/", portal_views.NoticeConfirmView.as_view(), name="confirm"),
]
