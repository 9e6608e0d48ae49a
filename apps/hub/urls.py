from django.urls import path

from apps.hub import views

app_name = "hub"
urlpatterns = [
    path("", views.connection_page, name="connection"),
    path("connect/", views.oauth_connect, name="connect"),
    path("callback/", views.oauth_callback, name="callback"),
    path("token/", views.token_connect, name="token"),
    path("disconnect/", views.disconnect, name="disconnect"),
    path("preferences/", views.preferences_update, name="preferences"),
    path("publish/<uuid:code>/", views.publish, name="publish"),
    path("pushes/", views.push_list, name="pushes"),
    path("pushes/<uuid:code>/", views.push_detail, name="push"),
]
