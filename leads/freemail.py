"""Free-mail and disposable email domains: their leads get no company Account and are flagged personal."""
from __future__ import annotations

FREE_MAIL_DOMAINS = frozenset(
    """
    gmail.com googlemail.com outlook.com hotmail.com live.com msn.com passport.com windowslive.com
    yahoo.com ymail.com rocketmail.com aol.com aim.com icloud.com me.com mac.com
    proton.me protonmail.com protonmail.ch pm.me tutanota.com tutanota.de tuta.io tutamail.com
    zoho.com zohomail.com fastmail.com fastmail.fm hey.com mail.com email.com inbox.com
    gmx.com gmx.net gmx.de gmx.at gmx.ch gmx.us web.de t-online.de freenet.de arcor.de
    mail.ru inbox.ru list.ru bk.ru yandex.ru yandex.com ya.ru rambler.ru
    qq.com 163.com 126.com yeah.net sina.com sina.cn sohu.com aliyun.com foxmail.com
    naver.com daum.net hanmail.net nate.com
    comcast.net verizon.net att.net sbcglobal.net bellsouth.net cox.net charter.net earthlink.net
    optonline.net frontier.com windstream.net juno.com netzero.net rogers.com shaw.ca sympatico.ca
    btinternet.com btopenworld.com sky.com talktalk.net virginmedia.com ntlworld.com blueyonder.co.uk
    orange.fr wanadoo.fr free.fr laposte.net sfr.fr neuf.fr club-internet.fr
    libero.it virgilio.it tin.it alice.it tiscali.it
    seznam.cz centrum.cz wp.pl o2.pl onet.pl interia.pl
    rediffmail.com bigpond.com optusnet.com.au xtra.co.nz
    terra.com.br bol.com.br uol.com.br ig.com.br
    telenet.be skynet.be ziggo.nl kpnmail.nl planet.nl home.nl hetnet.nl
    bluewin.ch hispeed.ch sunrise.ch
    mailinator.com guerrillamail.com 10minutemail.com temp-mail.org yopmail.com trashmail.com
    sharklasers.com getnada.com dispostable.com maildrop.cc throwawaymail.com
    """.split()
)

# Providers with one domain per country (yahoo.co.uk, hotmail.fr, outlook.de, gmx.at ...).
_COUNTRY_FAMILIES = frozenset({"yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "aol", "msn", "windowslive"})


def is_free_mail_domain(domain: str) -> bool:
    """True for webmail/ISP/disposable domains (a canonical, lower-case ASCII domain)."""
    domain = (domain or "").lower().rstrip(".")
    if not domain:
        return False
    if domain in FREE_MAIL_DOMAINS:
        return True
    first, _, rest = domain.partition(".")
    # The rest must look like a country suffix ("fr", "co.uk", "com.au"), not a company's
    # own domain that happens to start with the same word ("live.acme.com").
    rest_labels = rest.split(".") if rest else []
    return (
        first in _COUNTRY_FAMILIES
        and 1 <= len(rest_labels) <= 2
        and all(len(label) <= 3 for label in rest_labels)
    )
