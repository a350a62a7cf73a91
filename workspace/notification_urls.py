"""UI URLs of the notification centre: the list, the bell the top bar polls, marking read, opening one."""
from django.urls import path

from . import notification_views as views

urlpatterns = [
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/bell/", views.notification_bell, name="notification-bell"),
    path("notifications/read-all/", views.notifications_read_all, name="notifications-read-all"),
    path("notifications/<int:notification_id>/read/", views.notification_read, name="notification-read"),
    path("notifications/<int:notification_id>/open/", views.notification_open, name="notification-open"),
]
