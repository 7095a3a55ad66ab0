from django.urls import path

from . import views

app_name = "notices"

urlpatterns = [
    path("notices/", views.NoticesView.as_view(), name="list"),
    path("notices/<uuid:pk>/confirm/", views.NoticeConfirmView.as_view(), name="confirm"),
]
