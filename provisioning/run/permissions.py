"""What each feature needs from the tenant: Graph application permissions (least privileged first) and, where Graph
asks for one, a directory role held by the app. ``check`` decides readiness from it and a 403 names the permission.

Sources (Microsoft Graph v1.0 API pages, "Permissions" tables; see graph-facts.md and its addendum):
user-post-users, user-list, domain-list, subscribedsku-list (LicenseAssignment.Read.All least privileged),
user-assignlicense, group-list, group-post-members (role-assignable groups also need
RoleManagement.ReadWrite.Directory), user-post-manager, user-sendmail, user-update (passwordProfile: the app also
needs a directory role that may reset passwords), temporaryaccesspassauthenticationmethod-post (app-only:
UserAuthenticationMethod.ReadWrite.All, no directory role), temporaryaccesspassauthenticationmethodconfiguration-get
(Policy.Read.AuthenticationMethod least privileged), directory-deleteditems-list and -restore.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

#: Directory role template ids (the ``wids`` claim of an app-only token) that may reset a non-admin's password.
PASSWORD_RESET_ROLES: Mapping[str, str] = {
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
}

GRANT_HOW = ("grant it under App registrations > API permissions > Add a permission > Microsoft Graph > "
             "Application permissions, then Grant admin consent")
ROLE_HOW = ("assign the role to the app under Roles and administrators > {role} > Add assignments (select the "
            "app's enterprise application)")
MAIL_SCOPE_HOW = ("Mail.Send lets the app send as any mailbox in the tenant: scope it to the sender's mailbox with "
                  "an Exchange Online application access policy (New-ApplicationAccessPolicy -AppId APP_ID "
                  "-PolicyScopeGroupId SENDER_GROUP -AccessRight RestrictAccess) or RBAC for Applications "
                  "(New-ManagementRoleAssignment -App APP_ID -Role \"Application Mail.Send\" "
                  "-CustomResourceScope SCOPE)")


@dataclass(frozen=True, slots=True)
class Need:
    """One feature: the application permissions that allow it (any one; the least privileged first) and the
    directory roles the app must also hold (any one), if Graph asks for one."""

    feature: str
    any_of: tuple[str, ...]
    roles: Mapping[str, str] | None = None
    note: str = ""

    @property
    def least(self) -> str:
        """The least-privileged permission that allows the feature."""
        return self.any_of[0]

    def granted(self, permissions: Collection[str]) -> tuple[str, ...]:
        """The permissions among ``permissions`` that allow the feature."""
        return tuple(p for p in self.any_of if p in permissions)

    def role_held(self, wids: Collection[str]) -> str:
        """The name of a directory role among ``wids`` that satisfies the feature ("" when none or not needed)."""
        for wid in wids:
            if self.roles and wid.lower() in self.roles:
                return self.roles[wid.lower()]
        return ""

    def missing(self, permissions: Collection[str], wids: Collection[str]) -> str:
        """What is missing for the feature, as a sentence part ("" when nothing is)."""
        if not self.granted(permissions):
            return f"the application permission {self.least}"
        if self.roles and not self.role_held(wids):
            return f"a directory role such as {next(iter(self.roles.values()))}"
        return ""

    def how(self) -> str:
        """What the administrator does to grant the feature."""
        if self.roles:
            return (f"grant {self.least} ({GRANT_HOW.split(' under ', 1)[1]}) and "
                    + ROLE_HOW.format(role=next(iter(self.roles.values()))))
        return GRANT_HOW


_DIR_R = ("Directory.Read.All", "Directory.ReadWrite.All")
CREATE_USERS = Need("create users", ("User.ReadWrite.All", "Directory.ReadWrite.All"))
LOOKUP_USERS = Need("look up existing users", ("User.Read.All", "User.ReadWrite.All") + _DIR_R)
READ_DOMAINS = Need("read verified domains", ("Domain.Read.All", "Domain.ReadWrite.All") + _DIR_R)
READ_ORGANIZATION = Need("read the tenant's name", ("Organization.Read.All", "Organization.ReadWrite.All") + _DIR_R)
READ_LICENSES = Need("read licences (SKUs)", ("LicenseAssignment.Read.All", "Organization.Read.All",
                                              "LicenseAssignment.ReadWrite.All", "Organization.ReadWrite.All")
                     + _DIR_R)
ASSIGN_LICENSES = Need("assign licences", ("LicenseAssignment.ReadWrite.All", "User.ReadWrite.All",
                                           "Directory.ReadWrite.All"))
READ_GROUPS = Need("find groups", ("GroupMember.Read.All", "GroupMember.ReadWrite.All", "Group.Read.All",
                                   "Group.ReadWrite.All") + _DIR_R)
ADD_MEMBERS = Need("add to groups", ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
                   note="a role-assignable group also needs RoleManagement.ReadWrite.Directory")
ROLE_GROUP_MEMBERS = Need("add to role-assignable groups", ("RoleManagement.ReadWrite.Directory",))
SET_MANAGERS = Need("set managers", ("User.ReadWrite.All", "Directory.ReadWrite.All"))
RESET_PASSWORDS = Need("reset passwords", ("User.ReadWrite.All", "User-PasswordProfile.ReadWrite.All",
                                           "Directory.ReadWrite.All"), roles=PASSWORD_RESET_ROLES)
UPDATE_USERS = Need("update existing users", ("User.ReadWrite.All", "Directory.ReadWrite.All"))
#: directory-deleteditems-restore: a user; one who holds a privileged admin role also needs a higher role
RESTORE_USERS = Need("restore deleted users", ("User.ReadWrite.All", "Directory.ReadWrite.All"))
SEND_MAIL = Need("send notification mail", ("Mail.Send",), note=MAIL_SCOPE_HOW)
#: What ``rollback`` needs beyond the writes it undoes (not listed by ``check``: a rollback is no run).
DELETE_USERS = Need("delete users (rollback)", ("User.ReadWrite.All", "Directory.ReadWrite.All"))
REMOVE_MEMBERS = Need("remove group members (rollback)", ("GroupMember.ReadWrite.All", "Group.ReadWrite.All",
                                                          "Directory.ReadWrite.All"))
READ_TAP_POLICY = Need("read the Temporary Access Pass policy", ("Policy.Read.AuthenticationMethod",
                                                                  "Policy.ReadWrite.AuthenticationMethod",
                                                                  "Policy.Read.All"))
ISSUE_TAPS = Need("issue Temporary Access Passes", ("UserAuthenticationMethod.ReadWrite.All",))
DELIVER_MAIL = Need("mail credentials to managers", ("Mail.Send",), note=MAIL_SCOPE_HOW)

#: Every feature, in the order ``check`` lists them.
ALL_NEEDS: tuple[Need, ...] = (CREATE_USERS, LOOKUP_USERS, READ_DOMAINS, READ_LICENSES, ASSIGN_LICENSES,
                               READ_GROUPS, ADD_MEMBERS, ROLE_GROUP_MEMBERS, SET_MANAGERS, UPDATE_USERS,
                               RESET_PASSWORDS, SEND_MAIL, READ_TAP_POLICY, ISSUE_TAPS, DELIVER_MAIL)
#: What every run needs: the create path (pre-flight reads the verified domains and looks users up).
BASIC_NEEDS: tuple[Need, ...] = (CREATE_USERS, LOOKUP_USERS, READ_DOMAINS)


@dataclass(frozen=True, slots=True)
class Work:
    """What a planned run will do, as far as permissions go."""

    groups: bool = False
    role_assignable_groups: bool = False
    licenses: bool = False
    managers: bool = False
    update: bool = False
    reset_passwords: bool = False
    notify: bool = False
    tap: bool = False  # --credential tap: read the TAP policy, issue passes
    deliver: bool = False  # --deliver managers: mail the credentials


def needs_for(work: Work) -> tuple[Need, ...]:
    """The features ``work`` needs, the basic create path first."""
    extra = ((work.groups, READ_GROUPS), (work.groups, ADD_MEMBERS),
             (work.role_assignable_groups, ROLE_GROUP_MEMBERS), (work.licenses, READ_LICENSES),
             (work.licenses, ASSIGN_LICENSES), (work.managers, SET_MANAGERS), (work.update, UPDATE_USERS),
             (work.reset_passwords, RESET_PASSWORDS), (work.notify, SEND_MAIL),
             (work.tap, READ_TAP_POLICY), (work.tap, ISSUE_TAPS), (work.deliver, DELIVER_MAIL))
    return BASIC_NEEDS + tuple(need for wanted, need in extra if wanted)


_ID = r"[^/?]+"
_VERSION = re.compile(r"^/(?:v1\.0|beta)(?=/)")
#: (method, path pattern relative to /v1.0) -> the feature a 403 on that call is about.
_CALLS: tuple[tuple[str, re.Pattern[str], Need], ...] = tuple(
    (m, re.compile(p + r"/?$"), n) for m, p, n in (
        ("POST", r"/users", CREATE_USERS),
        ("GET", r"/users(?:/" + _ID + r")?", LOOKUP_USERS),
        ("PATCH", r"/users/" + _ID, UPDATE_USERS),
        ("POST", r"/users/" + _ID + r"/assignLicense", ASSIGN_LICENSES),
        ("PUT", r"/users/" + _ID + r"/manager/\$ref", SET_MANAGERS),
        ("POST", r"/users/" + _ID + r"/sendMail", SEND_MAIL),
        ("GET", r"/domains(?:/" + _ID + r")?", READ_DOMAINS),
        ("GET", r"/organization(?:/" + _ID + r")?", READ_ORGANIZATION),
        ("GET", r"/subscribedSkus(?:/" + _ID + r")?", READ_LICENSES),
        ("GET", r"/groups(?:/" + _ID + r")?(?:/members)?", READ_GROUPS),
        ("POST", r"/groups/" + _ID + r"/members/\$ref", ADD_MEMBERS),
        ("PATCH", r"/groups/" + _ID, ADD_MEMBERS),
        ("DELETE", r"/users/" + _ID, DELETE_USERS),
        ("DELETE", r"/users/" + _ID + r"/manager/\$ref", SET_MANAGERS),
        ("DELETE", r"/groups/" + _ID + r"/members/" + _ID + r"/\$ref", REMOVE_MEMBERS),
        ("POST", r"/users/" + _ID + r"/authentication/temporaryAccessPassMethods", ISSUE_TAPS),
        ("GET", r"/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/" + _ID, READ_TAP_POLICY),
        ("GET", r"/directory/deletedItems(?:/" + _ID + r")?", LOOKUP_USERS),
        ("POST", r"/directory/deletedItems/" + _ID + r"/restore", RESTORE_USERS),
    ))


def need_of_call(method: str, path: str, *, password: bool = False) -> Need | None:
    """The feature behind ``method path`` (a PATCH of a user that carries a password is a password reset)."""
    path = _VERSION.sub("", "/" + path.split("?", 1)[0].lstrip("/"))
    for m, pattern, need in _CALLS:
        if m == method.upper() and pattern.match(path):
            if need is UPDATE_USERS and password:
                return RESET_PASSWORDS
            return need
    return None


def explain_denied(method: str, path: str, graph_message: str, *, password: bool = False,
                   role_group: bool = False) -> str:
    """One line for a 403: the call, Graph's answer, and the permission (and role) it needs."""
    path_only = _VERSION.sub("", "/" + path.split("?", 1)[0].lstrip("/"))
    need = ROLE_GROUP_MEMBERS if role_group else need_of_call(method, path, password=password)
    head = f"Graph refused {method.upper()} {path_only} ({graph_message})"
    if need is None:
        return f"{head}: the app lacks a permission for this call; run `check` to see what is granted"
    if need.roles:
        return (f"{head}: {need.feature} needs the application permission {need.least} and a directory role "
                f"such as {next(iter(need.roles.values()))} held by the app; {need.how()}")
    also = f" ({need.note})" if need.note and need is not SEND_MAIL else ""
    return f"{head}: {need.feature} needs the application permission {need.least}{also}; {GRANT_HOW}"
