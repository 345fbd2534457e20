<p title="${c.raw}">${c.raw} | ${c.safe} | ${c.shout} | ${c.raw | n} | ${h.literal(u'<br/>')}</p>
